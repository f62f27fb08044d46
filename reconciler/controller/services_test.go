package controller

import (
	"context"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/pki"
)

const webService = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80}]
`

func (h *harness) joinAt(node, addr string) {
	h.t.Helper()
	csr, _, err := pki.NewCSR(node)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.ctrl.Join(context.Background(), api.JoinRequest{Node: node, Secret: h.auth.Token().Secret,
		CSR: string(csr), Address: netip.MustParseAddr(addr)}); err != nil {
		h.t.Fatal(err)
	}
}

func TestServicesAndNetwork(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.joinAt("a", "192.168.0.1")
	h.joinAt("b", "192.168.0.2")
	h.src.commit("c1", map[string]string{"web.yaml": deployment("web", 2, "img:1"), "svc.yaml": webService})
	if res, err := h.ctrl.Sync(ctx); err != nil || res.State != api.CommitAccepted {
		t.Fatalf("sync: %+v %v", res, err)
	}
	da, _ := h.doc("a")
	if n := da.Network; n == nil || n.PodCIDR.String() != "10.244.0.0/24" || len(n.Peers) != 1 ||
		n.Peers[0].NodeIP.String() != "192.168.0.2" || n.DNSServiceIP.String() != "10.96.0.10" {
		t.Fatalf("network of a: %+v", da.Network)
	}
	if len(da.Services) != 1 || da.Services[0].ClusterIP.String() != "10.96.0.1" ||
		da.Services[0].Ports[0].NodePort != 30000 || len(da.Services[0].Endpoints) != 0 {
		t.Fatalf("services of a: %+v", da.Services)
	}

	// a reports its pod ready with an address: every node's table gets
	// the endpoint.
	pod := da.Pods[0]
	st := api.PodStatus{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, Commit: "c1", Status: corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "10.244.0.2",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(h.now)}},
	}}
	if err := h.ctrl.ReportStatus(ctx, api.NodeStatus{Node: "a", Commit: "c1", Pods: []api.PodStatus{st}}); err != nil {
		t.Fatal(err)
	}
	db, digestB := h.doc("b")
	if eps := db.Services[0].Endpoints; len(eps) != 1 || eps[0].IP.String() != "10.244.0.2" || eps[0].Node != "a" {
		t.Fatalf("endpoints on b: %+v", eps)
	}
	views, err := h.ctrl.Services(ctx)
	if err != nil || len(views) != 1 || views[0].Service.Spec.ClusterIP != "10.96.0.1" || views[0].Service.Spec.Ports[0].NodePort != 30000 {
		t.Fatalf("services view: %+v %v", views, err)
	}
	nodes, _ := h.ctrl.Nodes(ctx)
	if nodes[0].Address.String() != "192.168.0.1" || nodes[0].PodCIDR.String() != "10.244.0.0/24" {
		t.Fatalf("nodes view: %+v", nodes[0])
	}

	// The same report again changes nothing.
	if err := h.ctrl.ReportStatus(ctx, api.NodeStatus{Node: "a", Commit: "c1", Pods: []api.PodStatus{st}}); err != nil {
		t.Fatal(err)
	}
	if _, d := h.doc("b"); d != digestB {
		t.Fatal("an unchanged report changed b's document")
	}

	// A restart keeps every allocation and document.
	h.open()
	if _, d := h.doc("b"); d != digestB {
		t.Fatal("restart changed b's document")
	}
	// A new commit with another Service keeps web's allocations.
	h.src.commit("c2", map[string]string{"web.yaml": deployment("web", 2, "img:1"), "svc.yaml": webService +
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: aaa}\nspec:\n  type: NodePort\n  ports: [{port: 81}]\n"})
	if _, err := h.ctrl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	db, _ = h.doc("b")
	if len(db.Services) != 2 || db.Services[1].Name != "web" || db.Services[1].ClusterIP.String() != "10.96.0.1" ||
		db.Services[1].Ports[0].NodePort != 30000 || db.Services[0].ClusterIP.String() != "10.96.0.2" {
		t.Fatalf("services after c2: %+v", db.Services)
	}
}

func TestServiceOutOfRangeRejectsCommit(t *testing.T) {
	h := newHarness(t)
	h.src.commit("c1", map[string]string{"svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIP: 10.0.0.5\n  ports: [{port: 80}]\n"})
	res, err := h.ctrl.Sync(context.Background())
	want := `svc.yaml: document 0: Service default/s: spec.clusterIP: Invalid value: "10.0.0.5": is not in the service CIDR 10.96.0.0/12; pick an address inside it or leave spec.clusterIP empty to have one allocated`
	if err != nil || res.State != api.CommitRejected || len(res.Errors) != 1 || res.Errors[0] != want {
		t.Fatalf("sync: %+v %v", res, err)
	}
}
