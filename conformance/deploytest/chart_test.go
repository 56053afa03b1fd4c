// Package deploytest checks the Helm chart (deploy/helm/gatehouse) and the
// plain manifests (deploy/manifests): rendered with Helm's own library,
// every object decodes strictly into the Kubernetes API types (an unknown
// or misplaced field fails), the objects fit together (selectors, ports,
// probes, the config map), and the configuration they mount passes
// Gatehouse's own validation. It is a module of its own (see go.mod) so
// that Helm's dependencies never enter the gateway's build.
package deploytest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-id/gatehouse/config"
)

const chartDir = "../../deploy/helm/gatehouse"

// render renders the chart as `helm template gatehouse` would, with the
// overrides, and returns the objects' YAML documents in file order.
func render(t *testing.T, overrides map[string]any) []string {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	vals, err := util.ToRenderValues(ch, overrides, common.ReleaseOptions{Name: "gatehouse", Namespace: "identity", Revision: 1, IsInstall: true}, nil)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var docs []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(doc) != "" {
				docs = append(docs, "# Source: "+strings.TrimPrefix(name, "gatehouse/")+"\n"+strings.TrimSpace(doc)+"\n")
			}
		}
	}
	return docs
}

// objects decodes the documents strictly into their API types.
type objects struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	configMap  *corev1.ConfigMap
	pdb        *policyv1.PodDisruptionBudget
	monitor    *serviceMonitor
}

// serviceMonitor is the Prometheus Operator's (a CRD: not in k8s.io/api);
// the fields the chart sets, decoded strictly all the same.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func decode(t *testing.T, docs []string) objects {
	t.Helper()
	var o objects
	for _, doc := range docs {
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		var into any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			o.deployment = &appsv1.Deployment{}
			into = o.deployment
		case "v1 Service":
			o.service = &corev1.Service{}
			into = o.service
		case "v1 ConfigMap":
			o.configMap = &corev1.ConfigMap{}
			into = o.configMap
		case "policy/v1 PodDisruptionBudget":
			o.pdb = &policyv1.PodDisruptionBudget{}
			into = o.pdb
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o.monitor = &serviceMonitor{}
			into = o.monitor
		default:
			t.Fatalf("an object the test does not know: %s %s", head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("%s does not decode strictly as the Kubernetes API type: %v\n%s", head.Kind, err, doc)
		}
	}
	if o.deployment == nil || o.service == nil || o.configMap == nil || o.pdb == nil {
		t.Fatalf("missing objects: %+v", o)
	}
	return o
}

// check asserts what running the gateway relies on.
func check(t *testing.T, o objects) {
	t.Helper()
	d := o.deployment
	pod := d.Spec.Template
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas: %v, want 3", d.Spec.Replicas)
	}
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
	if !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("the deployment's selector %v does not select its pods %v", sel, pod.Labels)
	}
	if !labels.SelectorFromSet(o.service.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		t.Errorf("the service selects %v, not the pods", o.service.Spec.Selector)
	}
	pdbSel := labels.SelectorFromSet(o.pdb.Spec.Selector.MatchLabels)
	if !pdbSel.Matches(labels.Set(pod.Labels)) || o.pdb.Spec.MaxUnavailable == nil || o.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("the disruption budget: %+v", o.pdb.Spec)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("containers: %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 || ports["ops"] != 9090 {
		t.Errorf("container ports: %v", ports)
	}
	for name, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "ops" {
			t.Errorf("%s probe: %+v, want GET %s on the ops port", name, probe, want)
		}
	}
	for _, p := range o.service.Spec.Ports {
		if _, ok := ports[p.TargetPort.String()]; !ok {
			t.Errorf("service port %s targets %q, which the container does not name", p.Name, p.TargetPort.String())
		}
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Errorf("no preStop pause: a rolling update would send requests to a closing pod")
	}
	if pod.Annotations["prometheus.io/scrape"] != "true" || pod.Annotations["prometheus.io/port"] != "9090" {
		t.Errorf("metrics annotations: %v", pod.Annotations)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context: %+v", c.SecurityContext)
	}
	// Secrets come from Secrets, by reference; the config map holds none.
	env := map[string]bool{}
	for _, e := range c.Env {
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("variable %s is not taken from a Secret", e.Name)
		}
		env[e.Name] = true
	}
	var configVolume string
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil {
			configVolume = v.ConfigMap.Name
		}
	}
	if configVolume != o.configMap.Name {
		t.Errorf("the pod mounts config map %q, the chart makes %q", configVolume, o.configMap.Name)
	}
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/gatehouse/gatehouse.yaml"}) {
		t.Errorf("args: %v", c.Args)
	}

	// The mounted configuration is one Gatehouse starts with, given the
	// Secrets' variables.
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(o.configMap.Data["gatehouse.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := []string{"GATEHOUSE_DB_DSN=postgres://gatehouse:pw@db:5432/gatehouse", "GATEHOUSE_SCIM_TOKEN_VALUE=scim-token-0123456789abcdef",
		"GATEHOUSE_ADMIN_TOKEN_VALUE=admin-token-0123456789abcdef"}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !env[name] {
			t.Errorf("the configuration reads %s, which the pod does not set", name)
		}
	}
	cfg, err := config.Load(path, environ)
	if err != nil {
		t.Fatalf("the chart's configuration: %v\n%s", err, o.configMap.Data["gatehouse.yaml"])
	}
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("the chart's configuration has problems: %v", problems)
	}
	if cfg.Store.Type != "postgres" || cfg.OpsListen != ":9090" || cfg.Listen != ":8080" {
		t.Errorf("store %q, listeners %q %q", cfg.Store.Type, cfg.Listen, cfg.OpsListen)
	}
}

func TestChartRendersValidObjects(t *testing.T) {
	check(t, decode(t, render(t, nil)))
}

func TestChartServiceMonitor(t *testing.T) {
	o := decode(t, render(t, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}}))
	if o.monitor == nil || len(o.monitor.Spec.Endpoints) != 1 || o.monitor.Spec.Endpoints[0].Port != "metrics" ||
		!labels.SelectorFromSet(o.monitor.Spec.Selector.MatchLabels).Matches(labels.Set(o.service.Labels)) {
		t.Fatalf("service monitor: %+v", o.monitor)
	}
	if !slices.ContainsFunc(o.service.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
		t.Fatal("the service has no metrics port for the monitor")
	}
}

// TestPlainManifests: deploy/manifests/gatehouse.yaml is the chart
// rendered with its defaults (GHTEST_UPDATE_MANIFESTS=1 writes it again).
func TestPlainManifests(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("# The Helm chart deploy/helm/gatehouse rendered with its default values\n# (release gatehouse, namespace identity); kubectl apply -n identity -f.\n# Regenerate: cd conformance/deploytest && GHTEST_UPDATE_MANIFESTS=1 go test ./...\n")
	for _, doc := range render(t, nil) {
		fmt.Fprintf(&b, "---\n%s", doc)
	}
	path := "../../deploy/manifests/gatehouse.yaml"
	if os.Getenv("GHTEST_UPDATE_MANIFESTS") == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (GHTEST_UPDATE_MANIFESTS=1 writes it)", err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("%s is not the chart rendered with its defaults: run (cd conformance/deploytest && GHTEST_UPDATE_MANIFESTS=1 go test ./...)", path)
	}
	var docs []string
	for _, d := range strings.Split(string(got), "\n---\n") {
		if strings.Contains(d, "kind:") {
			docs = append(docs, d)
		}
	}
	check(t, decode(t, docs))
}
