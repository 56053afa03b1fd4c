package conformance

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/gatehouse-id/gatehouse"

// importRules keeps the package boundaries of DESIGN.md: for a package
// path prefix (relative to the module), the module-internal import
// prefixes it may use. Longest matching prefix wins.
var importRules = map[string][]string{
	"config":            {"gateway"},
	"gateway":           {},
	"gateway/httpx":     {},
	"gateway/metrics":   {},
	"gateway/fold":      {},
	"gateway/provision": {"gateway", "gateway/fold"},
	"gateway/store":     {"gateway", "gateway/fold", "gateway/store/internal"}, // backends share storekit
	"gateway/session":   {"gateway", "gateway/httpx"},
	"gateway/signer":    {"gateway"},
	"gateway/outbox":    {"gateway", "gateway/metrics"},
	"gateway/feed":      {"gateway", "gateway/httpx"},
	"gateway/scim":      {"gateway", "gateway/provision", "gateway/httpx", "gateway/metrics", "gateway/scim", "gateway/fold"},
	"gateway/saml":      {"gateway", "gateway/login", "gateway/httpx", "gateway/metrics", "gateway/saml"},
	"gateway/oidc":      {"gateway", "gateway/login", "gateway/httpx", "gateway/metrics", "gateway/oidc"},
	"gateway/login":     {"gateway", "gateway/provision", "gateway/session", "gateway/httpx", "gateway/metrics", "gateway/pages"},
	"gateway/pages":     {},
	"gateway/proxy":     {"gateway", "gateway/session", "gateway/httpx", "gateway/pages"},
	"gateway/demo":      {},
	"gateway/admin":     {"gateway", "gateway/provision", "gateway/session", "gateway/httpx", "gateway/outbox", "gateway/fold", "gateway/metrics"},
	"gateway/console":   {"gateway", "gateway/admin", "gateway/provision", "gateway/session", "gateway/httpx"},
	"gateway/setup":     {"gateway", "gateway/admin", "gateway/provision", "gateway/login", "gateway/pages", "gateway/httpx"},
	"gateway/app":       {"*"},
	"adapters":          {"gateway", "adapters"},
	".":                 {"config", "gateway/app"},
}

// TestImportRules parses every non-test Go file and checks its
// module-internal imports against importRules.
func TestImportRules(t *testing.T) {
	fset := token.NewFileSet()
	eachProductFile(t, func(path, rel string) {
		allowed, ok := ruleFor(rel)
		if !ok {
			t.Errorf("%s: package %q has no import rule; add one to importRules", path, rel)
			return
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if p != module && !strings.HasPrefix(p, module+"/") {
				continue
			}
			target := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
			if !permitted(allowed, target) {
				t.Errorf("%s imports %s: %q may import only %v", path, p, rel, allowed)
			}
		}
	})
}

// eachProductFile calls fn with every non-test Go file of the product
// (conformance and testdata left out) and its package's path in the
// module ("." for the root).
func eachProductFile(t *testing.T, fn func(path, pkg string)) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); strings.HasPrefix(name, ".") || name == "testdata" || name == "conformance" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			fn(path, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ruleFor(pkg string) ([]string, bool) {
	best, found := "", false
	var allowed []string
	for prefix, rule := range importRules {
		if pkg == prefix || strings.HasPrefix(pkg, prefix+"/") {
			if !found || len(prefix) > len(best) {
				best, allowed, found = prefix, rule, true
			}
		}
	}
	return allowed, found
}

func permitted(allowed []string, target string) bool {
	for _, a := range allowed {
		if a == "*" || target == a {
			return true
		}
		// "gateway/scim" lets a scim sub-package import its siblings, but
		// "gateway" alone must not open every gateway/... package.
		if a != "gateway" && strings.HasPrefix(target, a+"/") {
			return true
		}
	}
	return false
}

// TestOnlyTheWiringNamesTheDefaultOrganization: the organization is
// resolved at the edge and passed down; no package below gateway/app
// (and no adapter or config) names the default one, so none can fall
// back to it when an id was forgotten.
func TestOnlyTheWiringNamesTheDefaultOrganization(t *testing.T) {
	mayName := map[string]bool{"gateway/app": true, ".": true}
	fset := token.NewFileSet()
	eachProductFile(t, func(path, rel string) {
		if mayName[rel] || rel == "gateway" && filepath.Base(path) == "org.go" { // the wiring; the definition
			return
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && id.Name == "DefaultOrg" {
				t.Errorf("%s: %s names the default organization; take the organization from the caller", fset.Position(id.Pos()), rel)
			}
			return true
		})
	})
}

// TestOneLoginFunnel: both sign-in protocols hand their identities to
// gateway/login, and gateway/app is wiring only: it holds no HTML (its
// pages live in gateway/pages and gateway/login).
func TestOneLoginFunnel(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	imports := func(dir string) map[string]bool {
		out := map[string]bool{}
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				out[strings.Trim(imp.Path.Value, `"`)] = true
			}
			if dir == "gateway/app" {
				ast.Inspect(f, func(n ast.Node) bool {
					if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s := strings.ToLower(lit.Value); strings.Contains(s, "<html") || strings.Contains(s, "<!doctype") || strings.Contains(s, "<form") {
							t.Errorf("%s: gateway/app holds HTML; pages belong in gateway/pages", fset.Position(lit.Pos()))
						}
					}
					return true
				})
			}
		}
		return out
	}
	for _, protocol := range []string{"gateway/saml", "gateway/oidc"} {
		if !imports(protocol)[module+"/gateway/login"] {
			t.Errorf("%s does not hand its sign-ins to gateway/login", protocol)
		}
	}
	if imports("gateway/app")["html/template"] {
		t.Error("gateway/app renders HTML templates; pages belong in gateway/pages")
	}
}
