package planner

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

var (
	webName = regexp.MustCompile(`^web-[0-9a-f]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}$`)
	uuidRE  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// planDeployments plans ds over three ready nodes and returns the pods in
// replica order, which is what naming stability is about.
func planDeployments(t *testing.T, commit string, ds ...appsv1.Deployment) []api.Pod {
	t.Helper()
	out := Plan(Input{
		Commit:  commit,
		Objects: &manifest.Objects{Deployments: ds},
		Nodes:   parseNodes(t, "a ready\nb ready\nc ready"),
	})
	if len(out.Pending) != 0 {
		t.Fatalf("pending: %+v", out.Pending)
	}
	var pods []api.Pod
	for i := range ds {
		pods = append(pods, deploymentPods(&ds[i])...)
	}
	for _, p := range pods {
		if _, ok := out.Placement[p.Key()]; !ok {
			t.Fatalf("pod %s not placed", p.Key())
		}
	}
	return pods
}

func names(pods []api.Pod) []string {
	var n []string
	for _, p := range pods {
		n = append(n, p.Name)
	}
	return n
}

func TestDeploymentPodIdentity(t *testing.T) {
	pods := planDeployments(t, "c1", deployment("web", 3, "nginx:1", nil))
	seen := map[string]bool{}
	for _, p := range pods {
		if !webName.MatchString(p.Name) {
			t.Errorf("name %q does not look like web-<hash>-<suffix>", p.Name)
		}
		if seen[p.Name] {
			t.Errorf("duplicate name %q", p.Name)
		}
		seen[p.Name] = true
		if !uuidRE.MatchString(p.UID) {
			t.Errorf("UID %q is not UUID-shaped", p.UID)
		}
		hash := p.Labels[api.LabelPodTemplateHash]
		if !strings.Contains(p.Name, "-"+hash+"-") || p.Labels["app"] != "web" {
			t.Errorf("labels %v: want app=web and the name's template hash", p.Labels)
		}
		if p.Owner != "Deployment/web" || p.SpecHash != api.HashObject(p.Spec) {
			t.Errorf("owner %q spec hash %q", p.Owner, p.SpecHash)
		}
	}
	if pods[0].UID == pods[1].UID {
		t.Errorf("replicas share UID %s", pods[0].UID)
	}
}

func TestDeploymentNamingStability(t *testing.T) {
	base := names(planDeployments(t, "c1", deployment("web", 2, "nginx:1", nil)))
	tests := []struct {
		name      string
		d         appsv1.Deployment
		commit    string
		keepFirst int  // how many of base's names must survive, in order
		allNew    bool // no name of base may survive
		count     int
	}{
		{name: "unrelated commit", d: deployment("web", 2, "nginx:1", nil), commit: "c2", keepFirst: 2, count: 2},
		{name: "scale up", d: deployment("web", 3, "nginx:1", nil), commit: "c2", keepFirst: 2, count: 3},
		{name: "scale down", d: deployment("web", 1, "nginx:1", nil), commit: "c2", keepFirst: 1, count: 1},
		{name: "scale to zero", d: deployment("web", 0, "nginx:1", nil), commit: "c2", count: 0},
		{name: "template change", d: deployment("web", 2, "nginx:2", nil), commit: "c2", allNew: true, count: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := names(planDeployments(t, tt.commit, tt.d))
			if len(got) != tt.count {
				t.Fatalf("%d pods, want %d", len(got), tt.count)
			}
			for i := 0; i < tt.keepFirst; i++ {
				if got[i] != base[i] {
					t.Errorf("replica %d renamed %s -> %s", i, base[i], got[i])
				}
			}
			if tt.allNew {
				for _, n := range got {
					for _, b := range base {
						if n == b {
							t.Errorf("name %s survived a template change", n)
						}
					}
				}
			}
		})
	}
}

func TestDefaultReplicasIsOne(t *testing.T) {
	d := deployment("web", 0, "nginx:1", nil)
	d.Spec.Replicas = nil
	if got := len(planDeployments(t, "c1", d)); got != 1 {
		t.Fatalf("%d pods for replicas unset, want 1", got)
	}
}

// An unrelated commit or an unrelated object must not change a node's
// pods: only NodeDesired.Commit moves.
func TestCommitIsNotPartOfPodIdentity(t *testing.T) {
	nodes := parseNodes(t, "a ready")
	one := Plan(Input{Commit: "c1", Nodes: nodes, Objects: &manifest.Objects{
		Deployments: []appsv1.Deployment{deployment("web", 2, "nginx:1", nil)},
	}})
	two := Plan(Input{Commit: "c2", Nodes: nodes, Objects: &manifest.Objects{
		Deployments: []appsv1.Deployment{deployment("web", 2, "nginx:1", nil)},
		Pods:        []corev1.Pod{bare("other", "", map[string]string{"zone": "elsewhere"})},
	}})
	d1, d2 := *one.Nodes["a"], *two.Nodes["a"]
	if d1.Commit != "c1" || d2.Commit != "c2" {
		t.Fatalf("commits %q %q", d1.Commit, d2.Commit)
	}
	d2.Commit = d1.Commit
	b1, _, _ := d1.Encode()
	b2, _, _ := d2.Encode()
	if !bytes.Equal(b1, b2) {
		t.Errorf("pods changed with the commit:\n%s\n%s", b1, b2)
	}
}

func TestReplicaNameSkipsUsedSuffixes(t *testing.T) {
	first := replicaName("default", "web", "0123456789", 0, map[string]bool{})
	used := map[string]bool{first: true}
	second := replicaName("default", "web", "0123456789", 0, used)
	if second == first || !used[second] {
		t.Fatalf("collision not resolved: %s then %s", first, second)
	}
	// Deterministic: the same collision resolves the same way.
	if again := replicaName("default", "web", "0123456789", 0, map[string]bool{first: true}); again != second {
		t.Fatalf("resolution not deterministic: %s vs %s", second, again)
	}
}

func TestBarePodWinsNameCollision(t *testing.T) {
	d := deployment("web", 1, "nginx:1", nil)
	taken := deploymentPods(&d)[0].Name
	out := Plan(Input{
		Nodes: parseNodes(t, "a ready"),
		Objects: &manifest.Objects{
			Deployments: []appsv1.Deployment{d},
			Pods:        []corev1.Pod{bare(taken, "", nil)},
		},
	})
	pods := out.Nodes["a"].Pods
	if len(pods) != 1 || pods[0].Owner != "" || pods[0].Name != taken {
		t.Fatalf("node a runs %+v, want only the bare pod %s", pods, taken)
	}
	if len(out.Pending) != 1 || out.Pending[0].Pod.Owner != "Deployment/web" ||
		!strings.Contains(out.Pending[0].Reason, "already used by Pod default/"+taken) {
		t.Fatalf("pending = %+v", out.Pending)
	}
	if len(out.Pods) != 2 {
		t.Fatalf("%d pod views, want 2 (one pending)", len(out.Pods))
	}
}

func TestBarePodAsWritten(t *testing.T) {
	p := bare("db", "", map[string]string{"disk": "ssd"})
	p.Labels = map[string]string{"app": "db"}
	p.Annotations = map[string]string{"note": "x"}
	out := Plan(Input{Nodes: parseNodes(t, "a ready disk=ssd"), Objects: &manifest.Objects{Pods: []corev1.Pod{p}}})
	got := out.Nodes["a"].Pods
	if len(got) != 1 {
		t.Fatalf("pods %+v", got)
	}
	g := got[0]
	if g.Name != "db" || g.Namespace != "default" || g.Owner != "" || g.Labels["app"] != "db" ||
		g.Annotations["note"] != "x" || g.Spec.NodeSelector["disk"] != "ssd" || g.SpecHash != api.HashObject(p.Spec) {
		t.Fatalf("pod %+v", g)
	}
	// The output must not alias the input.
	g.Labels["app"] = "changed"
	g.Spec.Containers[0].Image = "changed"
	if p.Labels["app"] != "db" || p.Spec.Containers[0].Image != "busybox" {
		t.Fatal("output aliases input")
	}
}
