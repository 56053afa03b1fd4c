// Package gateway is Gatehouse's domain: users, groups, the normalized
// provisioning events they produce, the errors every transport maps to its
// own wire form, and the interfaces (Store, Adapter) that the rest of the
// gateway is written against. It imports only the standard library so that
// protocol packages, stores and adapters can all depend on it.
package gateway
