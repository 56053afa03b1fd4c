package login

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	"github.com/gatehouse-id/gatehouse/gateway/pages"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/session"
)

// Options configures a Funnel.
type Options struct {
	// UnprefixedOrg is the organization served at the unprefixed URLs
	// ({prefix}/invite/…); every other one is at {prefix}/o/{org}/….
	UnprefixedOrg gateway.OrgID
	Store         gateway.Store // where a test sign-in's result waits for the manager's browser
	Service       *provision.Service
	Sessions      *session.Manager
	PathPrefix    string
	// Starter is the organization's sign-in in force (it follows its
	// identity settings); it returns nil while its people do not sign in
	// by SSO.
	Starter func(ctx context.Context, org gateway.OrgID) (Starter, error)
	Metrics *metrics.Metrics
	// Logger is used with each request's context, so that the gateway's
	// log handler adds its request id, client address and user agent.
	Logger *slog.Logger
}

// Funnel completes sign-ins, each in the organization whose IdP (or
// page) it started at.
type Funnel struct {
	opts  Options
	tests testSignIns
}

// New builds the funnel.
func New(opts Options) *Funnel {
	if err := opts.UnprefixedOrg.Check(); err != nil {
		panic("login.New: " + err.Error()) // the wiring names the organization; none is assumed
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Funnel{opts: opts}
}

// testPage is where a manager's test sign-in shows what the IdP sent
// (the console is the signed-in manager's organization's).
func (f *Funnel) testPage() string { return f.opts.PathPrefix + "/console/identity/test" }

// Base is where an organization's sign-in pages are: {prefix} for the
// default organization, {prefix}/o/{org} for every other.
func (f *Funnel) Base(org gateway.OrgID) string {
	if org == f.opts.UnprefixedOrg {
		return f.opts.PathPrefix
	}
	return f.opts.PathPrefix + "/o/" + string(org)
}

// Complete takes a verified identity through the funnel, as its intent
// says: the policy (JIT, link, refusals), an invitation or a join first
// when that is what the sign-in was for, then the session and the way
// back. A manager's test sign-in only records what the IdP sent.
func (f *Funnel) Complete(w http.ResponseWriter, r *http.Request, org gateway.OrgID, id gateway.Identity, in Intent) {
	ctx := r.Context()
	log := f.opts.Logger.With("org", string(org), "protocol", id.Protocol, "intent", string(in.Kind))
	if err := in.Check(); err != nil {
		f.count(id.Protocol, "intent")
		log.WarnContext(ctx, "sign-in refused: its intent is not usable", "error", err)
		f.show(w, r, http.StatusBadRequest, "Sign-in failed", "This sign-in cannot be completed.", "Start again from the application.")
		return
	}
	if err := f.opts.Service.CheckActive(ctx, org); err != nil {
		f.refuse(w, r, id.Protocol, err)
		return
	}
	returnTo := httpx.SafeReturn(in.Return)
	switch in.Kind {
	case TestSignIn:
		f.testSignInDone(w, r, org, id, in)
		return
	case SetupTest:
		f.setupTestDone(w, r, org, id, in)
		return
	case AcceptInvitation:
		if _, err := f.opts.Service.AcceptInvitation(ctx, org, in.Invitation, &id); err != nil {
			f.refuse(w, r, id.Protocol, err)
			return
		}
		returnTo = "/"
	case Join:
		if _, _, err := f.opts.Service.Join(ctx, org, id); err != nil {
			f.refuse(w, r, id.Protocol, err)
			return
		}
		returnTo = "/"
	}
	u, created, err := f.opts.Service.Login(ctx, org, id)
	if err != nil {
		f.refuse(w, r, id.Protocol, err)
		return
	}
	if err := f.startSession(ctx, w, r, org, u.ID, id); err != nil {
		var refused *provision.LoginError
		if errors.As(err, &refused) {
			f.refuse(w, r, id.Protocol, err)
			return
		}
		f.count(id.Protocol, "store")
		log.ErrorContext(ctx, "sign-in: the session could not be stored", "error", err)
		f.show(w, r, http.StatusServiceUnavailable, "Sign-in failed", "The sign-in could not be completed right now.", "Try again in a moment.")
		return
	}
	f.count(id.Protocol, "ok")
	if f.opts.Metrics != nil {
		f.opts.Metrics.LoginLastSuccess.WithLabelValues(string(org), id.Protocol).SetToCurrentTime()
	}
	if created && f.opts.Metrics != nil {
		f.opts.Metrics.JITCreations.Inc()
	}
	log.InfoContext(ctx, "signed in", "user", u.ID, "jit_created", created)
	http.Redirect(w, r, returnTo, http.StatusFound)
}

// IdPLogout ends the sessions an IdP's logout names (received is when
// it arrived), counting it and the time to its last session ended. It
// returns how many ended.
func (f *Funnel) IdPLogout(ctx context.Context, org gateway.OrgID, l gateway.IdPLogout, received time.Time) (int, error) {
	ended, err := f.opts.Service.EndIdPSessions(ctx, org, l)
	result := "ok"
	switch {
	case err != nil && gateway.ErrorCodeOf(err) == gateway.ErrNotFound:
		result = "none"
	case err != nil:
		result = "error"
	case len(ended) == 0:
		result = "none"
	}
	if f.opts.Metrics != nil {
		f.opts.Metrics.Logouts.WithLabelValues(l.Protocol, result).Inc()
		if len(ended) > 0 {
			f.opts.Metrics.LogoutSeconds.WithLabelValues(l.Protocol).Observe(time.Since(received).Seconds())
		}
	}
	users := make([]string, 0, len(ended))
	for _, se := range ended {
		if !slices.Contains(users, se.UserID) {
			users = append(users, se.UserID)
		}
	}
	log := f.opts.Logger.With("org", string(org), "protocol", l.Protocol, "issuer", l.Issuer)
	if err != nil && result == "error" {
		log.ErrorContext(ctx, "IdP logout: the sessions could not be ended", "error", err)
	} else {
		log.InfoContext(ctx, "IdP logout", "sessions_ended", len(ended), "users", users)
	}
	return len(ended), err
}

// SignedOut shows that the person is signed out (back from the IdP's
// logout).
func (f *Funnel) SignedOut(w http.ResponseWriter, r *http.Request, message string) {
	f.show(w, r, http.StatusOK, "Signed out", message, "")
}

// RefusedLogout counts an IdP logout message that was refused (forged,
// replayed, expired, for another audience): it changed nothing.
func (f *Funnel) RefusedLogout(protocol string) {
	if f.opts.Metrics != nil {
		f.opts.Metrics.Logouts.WithLabelValues(protocol, "refused").Inc()
	}
}

// startSession signs the user in. A suspension that ended the
// organization's sessions while this sign-in was completing ends this
// one too (a *provision.LoginError): no session outlives it.
func (f *Funnel) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, org gateway.OrgID, userID string, id gateway.Identity) error {
	se, err := f.opts.Sessions.StartSignIn(ctx, w, r, org, userID, id)
	if err != nil {
		return err
	}
	if err := f.opts.Service.CheckActive(ctx, org); err != nil {
		if derr := f.opts.Store.Sessions().Delete(ctx, org, se.ID); derr != nil {
			return errors.Join(err, derr)
		}
		return err
	}
	return nil
}

// Failed shows a protocol's refusal and counts it; reason is one of the
// protocol package's fixed words.
func (f *Funnel) Failed(protocol string) func(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
	return func(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
		f.count(protocol, reason)
		f.show(w, r, status, "Sign-in failed", message, "")
	}
}

// refuse shows a refusal of the policy (a *provision.LoginError, in the
// person's words) or a generic failure.
func (f *Funnel) refuse(w http.ResponseWriter, r *http.Request, protocol string, err error) {
	var refused *provision.LoginError
	if errors.As(err, &refused) {
		f.count(protocol, refused.Reason)
		f.opts.Logger.With("protocol", protocol).WarnContext(r.Context(), "sign-in refused", "reason", refused.Reason)
		f.show(w, r, http.StatusForbidden, "You cannot sign in to this application", refused.Message,
			"If you think you should have access, ask your administrator.")
		return
	}
	f.count(protocol, "store")
	f.opts.Logger.With("protocol", protocol).ErrorContext(r.Context(), "sign-in failed", "error", err)
	f.show(w, r, http.StatusServiceUnavailable, "Sign-in failed", "The sign-in could not be completed right now.", "Try again in a moment.")
}

func (f *Funnel) show(w http.ResponseWriter, r *http.Request, status int, title, message, hint string) {
	pages.Show(w, status, pages.Message{Title: title, Message: message, Hint: hint, RequestID: httpx.RequestID(r.Context())})
}

func (f *Funnel) count(protocol, result string) {
	if f.opts.Metrics != nil {
		f.opts.Metrics.Logins.WithLabelValues(protocol, result).Inc()
	}
}

// LastTestSignIn is what the IdP sent at the manager's last test sign-in
// in this process (nil: none).
func (f *Funnel) LastTestSignIn(_ context.Context, org gateway.OrgID, managerID string) *gateway.Identity {
	return f.tests.get(managerKey{org, managerID})
}

// managerKey names a manager across organizations.
type managerKey struct {
	org gateway.OrgID
	id  string
}

// testSignIns keeps, per manager, what the IdP sent at their last test
// sign-in, in this process (bounded; a diagnostic, not state).
type testSignIns struct {
	mu sync.Mutex
	m  map[managerKey]gateway.Identity
}

func (l *testSignIns) put(userID managerKey, id gateway.Identity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[managerKey]gateway.Identity{}
	}
	if _, ok := l.m[userID]; !ok && len(l.m) >= 1000 {
		for k := range l.m { // evict one, not everyone's
			delete(l.m, k)
			break
		}
	}
	l.m[userID] = id
}

func (l *testSignIns) get(userID managerKey) *gateway.Identity {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id, ok := l.m[userID]; ok {
		return &id
	}
	return nil
}

// testResultNS keeps a test sign-in's result until the manager's browser
// collects it.
const testResultNS = "test-sign-in"

// testResult is a test sign-in's result waiting for the browser that
// started it; Owner is who may see it (the manager's user id, or the
// setup link's id).
type testResult struct {
	Owner    string           `json:"owner"`
	Identity gateway.Identity `json:"identity"`
}

// parkTest keeps a test sign-in's result for five minutes under a random
// token and sends the browser on to done?t=<token> to collect it. Who may
// see it is checked there, not here: a SAML response is the IdP's
// cross-site POST, which a browser sends without the SameSite=Lax
// cookies, and the top-level GET that follows it carries them.
func (f *Funnel) parkTest(w http.ResponseWriter, r *http.Request, org gateway.OrgID, ns, done string, res testResult) {
	token := rand.Text()
	val, _ := json.Marshal(res)
	if _, err := f.opts.Store.Ephemeral().PutIfAbsent(r.Context(), org, ns, token, val, time.Now().Add(5*time.Minute)); err != nil {
		f.refuse(w, r, res.Identity.Protocol, err)
		return
	}
	http.Redirect(w, r, f.Base(org)+done+"?t="+url.QueryEscape(token), http.StatusSeeOther)
}

// takeTest returns a parked test sign-in's result, once.
func (f *Funnel) takeTest(ctx context.Context, org gateway.OrgID, ns, token string) (testResult, bool) {
	raw, err := f.opts.Store.Ephemeral().Take(ctx, org, ns, token)
	var res testResult
	if err != nil || raw == nil || json.Unmarshal(raw, &res) != nil {
		return testResult{}, false
	}
	return res, true
}

// testSignInDone parks a manager's test sign-in's result, for that
// manager's session.
func (f *Funnel) testSignInDone(w http.ResponseWriter, r *http.Request, org gateway.OrgID, id gateway.Identity, in Intent) {
	f.parkTest(w, r, org, testResultNS, "/login/test/done", testResult{Owner: in.Manager, Identity: id})
}

// collectTestSignIn shows a test sign-in's result to the manager who
// started it, in that manager's session, once.
func (f *Funnel) collectTestSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	org, ok := f.org(w, r)
	if !ok {
		return
	}
	res, ok := f.takeTest(ctx, org, testResultNS, r.URL.Query().Get("t"))
	if !ok {
		f.show(w, r, http.StatusNotFound, "Test sign-in expired", "This test sign-in's result was shown already or has expired.",
			"Start the test again from the console.")
		return
	}
	se, m, err := f.opts.Sessions.Current(ctx, r)
	if err != nil || se.Org != org || !m.IsManager() || m.ID != res.Owner {
		f.count(res.Identity.Protocol, "intent")
		f.opts.Logger.WarnContext(ctx, "test sign-in refused: not completed in the session of the manager who started it", "protocol", res.Identity.Protocol)
		f.show(w, r, http.StatusForbidden, "Test sign-in refused",
			"This test sign-in was started by a manager in another browser session, so its result is not shown here.",
			"Start the test again from the console.")
		return
	}
	f.tests.put(managerKey{org, m.ID}, res.Identity)
	if err := f.opts.Service.NoteSignInTested(ctx, org); err != nil {
		f.opts.Logger.WarnContext(ctx, "test sign-in: recording it", "error", err)
	}
	f.opts.Logger.InfoContext(ctx, "test sign-in", "protocol", res.Identity.Protocol, "manager", m.ID)
	http.Redirect(w, r, f.testPage(), http.StatusSeeOther)
}

// setupTestNS keeps a setup link's test sign-in result until the admin's
// browser collects it.
const setupTestNS = "setup-test"

// setupTestDone parks a setup link's test sign-in result for its setup
// page, which shows it only in the setup session that started it.
func (f *Funnel) setupTestDone(w http.ResponseWriter, r *http.Request, org gateway.OrgID, id gateway.Identity, in Intent) {
	f.parkTest(w, r, org, setupTestNS, "/setup/test/done", testResult{Owner: in.Setup, Identity: id})
}

// TakeSetupTest returns a parked setup test sign-in's result once: the
// setup link it was started for, and what the IdP sent.
func (f *Funnel) TakeSetupTest(ctx context.Context, org gateway.OrgID, token string) (string, gateway.Identity, bool) {
	res, ok := f.takeTest(ctx, org, setupTestNS, token)
	return res.Owner, res.Identity, ok
}
