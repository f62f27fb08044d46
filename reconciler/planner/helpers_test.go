package planner

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/moor-dev/moor/reconciler/manifest"
)

// parseObjects reads multi-document YAML into manifest.Objects the way the
// manifest package promises to deliver them (strict, namespace defaulted,
// sorted). It is a test stand-in so this package does not depend on the
// parser being written concurrently.
func parseObjects(t testing.TB, src string) *manifest.Objects {
	t.Helper()
	objs := &manifest.Objects{}
	for i, doc := range splitYAML(src) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var err error
		switch meta.Kind {
		case "Pod":
			var p corev1.Pod
			err = yaml.UnmarshalStrict([]byte(doc), &p)
			defaultNS(&p.Namespace)
			objs.Pods = append(objs.Pods, p)
		case "Deployment":
			var d appsv1.Deployment
			err = yaml.UnmarshalStrict([]byte(doc), &d)
			defaultNS(&d.Namespace)
			objs.Deployments = append(objs.Deployments, d)
		case "Service":
			var s corev1.Service
			err = yaml.UnmarshalStrict([]byte(doc), &s)
			defaultNS(&s.Namespace)
			objs.Services = append(objs.Services, s)
		case "Namespace":
			var n corev1.Namespace
			err = yaml.UnmarshalStrict([]byte(doc), &n)
			objs.Namespaces = append(objs.Namespaces, n)
		default:
			t.Fatalf("document %d: unsupported kind %q", i, meta.Kind)
		}
		if err != nil {
			t.Fatalf("document %d (%s): %v", i, meta.Kind, err)
		}
	}
	sort.Slice(objs.Pods, func(i, j int) bool {
		return objs.Pods[i].Namespace+"/"+objs.Pods[i].Name < objs.Pods[j].Namespace+"/"+objs.Pods[j].Name
	})
	sort.Slice(objs.Deployments, func(i, j int) bool {
		return objs.Deployments[i].Namespace+"/"+objs.Deployments[i].Name < objs.Deployments[j].Namespace+"/"+objs.Deployments[j].Name
	})
	return objs
}

func defaultNS(ns *string) {
	if *ns == "" {
		*ns = "default"
	}
}

func splitYAML(src string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+src, "\n---") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

// parseNodes reads one node per line: "name ready|notready [@address] [k=v ...]".
func parseNodes(t testing.TB, src string) []Node {
	t.Helper()
	var nodes []Node
	for _, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 || (f[1] != "ready" && f[1] != "notready") {
			t.Fatalf("node line %q: want \"name ready|notready [k=v ...]\"", line)
		}
		n := Node{Name: f[0], Ready: f[1] == "ready"}
		for _, kv := range f[2:] {
			if addr, ok := strings.CutPrefix(kv, "@"); ok {
				n.Address = netip.MustParseAddr(addr)
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("node line %q: label %q is not k=v", line, kv)
			}
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels[k] = v
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// deployment builds a one-container Deployment.
func deployment(name string, replicas int32, image string, nodeSelector map[string]string) appsv1.Deployment {
	return appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					NodeSelector: nodeSelector,
					Containers:   []corev1.Container{{Name: "main", Image: image}},
				},
			},
		},
	}
}

// bare builds a one-container Pod.
func bare(name, nodeName string, nodeSelector map[string]string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:     nodeName,
			NodeSelector: nodeSelector,
			Containers:   []corev1.Container{{Name: "main", Image: "busybox"}},
		},
	}
}

// podsByNode summarises a plan as "node: pod pod ..." lines.
func podsByNode(out *Output) string {
	var names []string
	for n := range out.Nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s:", n)
		for _, p := range out.Nodes[n].Pods {
			fmt.Fprintf(&b, " %s", p.Name)
		}
		b.WriteString("\n")
	}
	return b.String()
}
