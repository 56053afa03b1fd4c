// Package conformance holds Gatehouse's end-to-end and interop suites: the
// Okta and Microsoft Entra ID SCIM sequences replayed as HTTP requests
// against a real gateway on 127.0.0.1, bad-input cases, and the import
// rules that keep the package boundaries. It has no non-test code.
package conformance
