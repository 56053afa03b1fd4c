package conformance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium. Without one the browser tests skip
// loudly, unless GHTEST_BROWSER_REQUIRED=1 (CI sets it) makes that a
// failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("GHTEST_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("GHTEST_BROWSER_REQUIRED") == "1" {
		t.Fatal("no chromium found and GHTEST_BROWSER_REQUIRED=1: install Debian's chromium (apt-get install chromium)")
	}
	t.Skip("SKIPPING BROWSER TEST: no chromium installed (apt-get install chromium); .ci/run installs it and requires these tests")
	return ""
}

// browser is a headless Chromium; each tab made with newTab has its own
// cookies (its own browser context).
type browser struct {
	t     *testing.T
	alloc context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	// The first context starts the browser; each tab then gets a browser
	// context of its own (separate cookies).
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, alloc: root}
}

// tab is one browsing context with its own cookie jar.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func (b *browser) newTab(name string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	tb := &tab{t: b.t, name: name, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("start chromium: %v", err)
	}
	b.t.Cleanup(func() {
		if b.t.Failed() {
			tb.screenshot(filepath.Join(os.TempDir(), "gatehouse-screenshots", sanitize(b.t.Name())+"-"+name+".png"))
		}
	})
	return tb
}

func sanitize(s string) string { return strings.NewReplacer("/", "_", " ", "_").Replace(s) }

// run performs steps with a deadline, failing the test with what failed.
func (tb *tab) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
		tb.t.Fatalf("%s (%s at %s): %v", what, tb.name, loc, err)
	}
}

// value runs one action that returns a value, with a deadline.
func value[T any](tb *tab, what string, action chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
		tb.t.Fatalf("%s (%s at %s): %v", what, tb.name, loc, err)
	}
	return v
}

// text returns the text of the first element matching the CSS selector.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return value(tb, "read "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (tb *tab) location() string {
	tb.t.Helper()
	return value(tb, "location", chromedp.Location())
}

// screenshot saves the whole page as PNG (failures, and the README's
// pictures).
func (tb *tab) screenshot(path string) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("screenshot %s: %v", path, err)
		return
	}
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Logf("screenshot %s: %v", path, err)
		return
	}
	tb.t.Logf("screenshot of %s saved to %s", tb.name, path)
}

// idpSignIn fills the demo IdP's form (where a sign-in starts) and waits
// until the browser is back on a page outside the IdP (after the
// auto-posted response) that shows sel.
func (tb *tab) idpSignIn(user, password, sel string) {
	tb.t.Helper()
	tb.run("sign in at the IdP as "+user,
		chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Evaluate[chromedp.Void](`window.__gatehouseOldPage = true`),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	tb.waitFor("back from the IdP", `!document.querySelector('input[name=password]') && !document.querySelector('input[name=SAMLResponse]') && document.querySelector(`+"`"+sel+"`"+`) !== null`)
}

// waitFor waits for a new document, fully loaded, where the JavaScript
// condition holds (errors while pages are replaced are expected).
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__gatehouseOldPage === undefined && document.readyState === "complete" && (`+cond+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
			tb.t.Fatalf("%s (%s at %s): the page did not come: %v", what, tb.name, loc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// submit clicks a form's button and waits for the page the form leads to
// (a new document, fully loaded): the old page's notice must not pass
// for the new one's.
func (tb *tab) submit(what, button string) {
	tb.t.Helper()
	tb.run(what,
		chromedp.Evaluate[chromedp.Void](`window.__gatehouseOldPage = true`),
		chromedp.Click(chromedp.CSS(button)))
	tb.waitFor(what, "true")
}
