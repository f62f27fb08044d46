package cli

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// Page models of the Deployments, Services, Jobs, Secrets and Commits
// pages; see dashboard_pages.go.

// nsKey orders views by namespace, then name.
func nsKey[T any](items []T, key func(T) (string, string)) []T {
	return sortByKey(slices.Clone(items), key)
}

// deploymentRow is one Deployment.
type deploymentRow struct {
	Namespace, Name               string
	Ready, UpToDate, Available    string
	State, StateClass, Message    string
	Revisions                     []revisionRow
	Age                           when
	CommitShort, Strategy, Images string
}

// revisionRow is one revision that still has pods.
type revisionRow struct {
	Hash, Images               string
	Replicas, Ready, Available int32
	Current                    bool
}

func deploymentsPage(deps []api.DeploymentView, now time.Time) []deploymentRow {
	deps = nsKey(deps, func(v api.DeploymentView) (string, string) { return v.Deployment.Namespace, v.Deployment.Name })
	rows := make([]deploymentRow, 0, len(deps))
	for _, v := range deps {
		d := &v.Deployment
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		_, images := containerColumns(d)
		row := deploymentRow{Namespace: d.Namespace, Name: d.Name, Ready: fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want),
			UpToDate: fmt.Sprint(d.Status.UpdatedReplicas), Available: fmt.Sprint(d.Status.AvailableReplicas),
			State: orNone(v.Rollout.State), StateClass: rolloutClass(v.Rollout.State), Message: v.Rollout.Message,
			Age: whenOf(d.CreationTimestamp.Time, now), CommitShort: shortSHA(v.Commit), Strategy: strategyOf(d), Images: images}
		for _, r := range v.Rollout.Revisions {
			row.Revisions = append(row.Revisions, revisionRow{Hash: r.Hash, Images: strings.Join(r.Images, ", "),
				Replicas: r.Replicas, Ready: r.Ready, Available: r.Available, Current: r.Current})
		}
		rows = append(rows, row)
	}
	return rows
}

func strategyOf(d *appsv1.Deployment) string {
	if d.Spec.Strategy.Type == "" {
		return string(appsv1.RollingUpdateDeploymentStrategyType)
	}
	return string(d.Spec.Strategy.Type)
}

func rolloutClass(state string) string {
	switch state {
	case api.RolloutComplete:
		return classOK
	case api.RolloutFailed:
		return classBad
	}
	return classWarn
}

// serviceRow is one Service with its endpoints.
type serviceRow struct {
	Namespace, Name, Type, ClusterIP, ExternalIP, Ports string
	Ready, Total                                        int
	EndpointsClass                                      string
	Endpoints                                           []endpointRow
	Selector, CommitShort                               string
}

// endpointRow is one endpoint of a Service.
type endpointRow struct {
	Pod, Href, IP, Node, Ports string
	Ready                      bool
}

func servicesPage(svcs []api.ServiceView) []serviceRow {
	svcs = nsKey(svcs, func(v api.ServiceView) (string, string) { return v.Service.Namespace, v.Service.Name })
	rows := make([]serviceRow, 0, len(svcs))
	for _, v := range svcs {
		s := &v.Service
		row := serviceRow{Namespace: s.Namespace, Name: s.Name, Type: string(s.Spec.Type), ClusterIP: orNone(s.Spec.ClusterIP),
			ExternalIP: externalIP(s), Ports: servicePorts(s.Spec.Ports), Total: len(v.Endpoints), Selector: formatLabels(s.Spec.Selector),
			CommitShort: shortSHA(v.Commit)}
		eps := slices.Clone(v.Endpoints)
		slices.SortFunc(eps, func(a, b api.Endpoint) int { return strings.Compare(a.Pod, b.Pod) })
		for _, e := range eps {
			if e.Ready {
				row.Ready++
			}
			ip := ""
			if e.IP.IsValid() {
				ip = e.IP.String()
			}
			var ports []string
			for _, sp := range s.Spec.Ports {
				if p, ok := e.Ports[sp.Name]; ok {
					ports = append(ports, fmt.Sprintf("%s→%d", cmp.Or(sp.Name, fmt.Sprint(sp.Port)), p))
				}
			}
			row.Endpoints = append(row.Endpoints, endpointRow{Pod: e.Pod, Href: podHref(s.Namespace, e.Pod), IP: ip, Node: e.Node,
				Ports: strings.Join(ports, ", "), Ready: e.Ready})
		}
		switch {
		case s.Spec.Selector == nil && row.Total == 0: // no selector: endpoints are not moor's to count
			row.EndpointsClass = ""
		case row.Ready == 0:
			row.EndpointsClass = classBad
		case row.Ready < row.Total:
			row.EndpointsClass = classWarn
		default:
			row.EndpointsClass = classOK
		}
		rows = append(rows, row)
	}
	return rows
}

// jobsData is the Jobs page: Jobs and CronJobs.
type jobsData struct {
	Jobs     []jobRow
	CronJobs []cronJobRow
}

type jobRow struct {
	Namespace, Name, Status, StatusClass, Completions, Duration string
	Age                                                         when
	CronJob, Images, CommitShort                                string
}

type cronJobRow struct {
	Namespace, Name, Schedule, TimeZone string
	Suspended                           bool
	Active                              []string
	LastSchedule, LastSuccess, Age      when
	Images, CommitShort                 string
}

func jobsPage(jobs []api.JobView, cjs []api.CronJobView, now time.Time) jobsData {
	var d jobsData
	o := tableOptions{Now: now}
	for _, v := range nsKey(jobs, func(v api.JobView) (string, string) { return v.Job.Namespace, v.Job.Name }) {
		j := &v.Job
		row := jobRow{Namespace: j.Namespace, Name: j.Name, Status: jobStatus(j), Completions: jobCompletions(j), Duration: jobDuration(j, o),
			Age: whenOf(j.CreationTimestamp.Time, now), CommitShort: shortSHA(v.Commit)}
		_, row.Images = podContainerColumns(&j.Spec.Template.Spec)
		switch row.Status {
		case "Complete":
			row.StatusClass = classOK
		case "Failed":
			row.StatusClass = classBad
		default:
			row.StatusClass = classWarn
		}
		for _, ref := range j.OwnerReferences {
			if ref.Kind == "CronJob" {
				row.CronJob = ref.Name
			}
		}
		d.Jobs = append(d.Jobs, row)
	}
	for _, v := range nsKey(cjs, func(v api.CronJobView) (string, string) { return v.CronJob.Namespace, v.CronJob.Name }) {
		c := &v.CronJob
		row := cronJobRow{Namespace: c.Namespace, Name: c.Name, Schedule: c.Spec.Schedule, Suspended: c.Spec.Suspend != nil && *c.Spec.Suspend,
			Age: whenOf(c.CreationTimestamp.Time, now), CommitShort: shortSHA(v.Commit)}
		if c.Spec.TimeZone != nil {
			row.TimeZone = *c.Spec.TimeZone
		}
		for _, a := range c.Status.Active {
			row.Active = append(row.Active, a.Name)
		}
		if t := c.Status.LastScheduleTime; t != nil {
			row.LastSchedule = whenOf(t.Time, now)
		}
		if t := c.Status.LastSuccessfulTime; t != nil {
			row.LastSuccess = whenOf(t.Time, now)
		}
		_, row.Images = podContainerColumns(&c.Spec.JobTemplate.Spec.Template.Spec)
		d.CronJobs = append(d.CronJobs, row)
	}
	return d
}

// secretRow is one Secret: where its values live and what each node
// read. api.SecretView holds no values, so neither does this.
type secretRow struct {
	Namespace, Name, Type, Engine, Path, Pin string
	Keys                                     string // Vault key mapping or a plain Secret's key names
	Nodes                                    []secretNodeRow
	Read, Errors                             int
	CommitShort                              string
}

type secretNodeRow struct {
	Node, Anchor, Pods, Version, Keys, Error string
	ReadAt, LeaseExpires                     when
}

func secretsPage(secrets []api.SecretView, now time.Time) []secretRow {
	secrets = nsKey(secrets, func(v api.SecretView) (string, string) { return v.Namespace, v.Name })
	rows := make([]secretRow, 0, len(secrets))
	for _, s := range secrets {
		row := secretRow{Namespace: s.Namespace, Name: s.Name, Type: s.Type, Engine: "plain", Path: "<plain>", CommitShort: shortSHA(s.Commit)}
		if s.Vault != nil {
			row.Engine, row.Path = s.Vault.Engine, s.Vault.Path
			if s.Vault.Version > 0 {
				row.Pin = fmt.Sprint(s.Vault.Version)
			}
			var m []string
			for _, k := range slices.Sorted(maps.Keys(s.Vault.Keys)) {
				m = append(m, k+"←"+s.Vault.Keys[k])
			}
			row.Keys = strings.Join(m, ", ")
			if row.Keys == "" {
				row.Keys = "every key of the Vault secret"
			}
		} else {
			row.Keys = strings.Join(s.PlainKeys, ", ")
		}
		for _, n := range s.Nodes {
			nr := secretNodeRow{Node: n.Node, Anchor: nodeAnchor(n.Node), Pods: strings.Join(n.Pods, ", "), Keys: strings.Join(n.Keys, ", "),
				Error: n.Error, ReadAt: whenOf(n.ReadAt, now)}
			if n.Version != 0 {
				nr.Version = fmt.Sprint(n.Version)
			}
			if !n.LeaseExpires.IsZero() {
				nr.LeaseExpires = when{Ago: "in " + humanDuration(n.LeaseExpires.Sub(now)), At: n.LeaseExpires.UTC().Format(time.RFC3339)}
			}
			if n.Error != "" {
				row.Errors++
			} else if !n.ReadAt.IsZero() {
				row.Read++
			}
			row.Nodes = append(row.Nodes, nr)
		}
		rows = append(rows, row)
	}
	return rows
}

func commitsPage(commits []api.CommitView, now time.Time) []commitCard {
	cs := sortedCommits(commits)
	cards := make([]commitCard, 0, len(cs))
	for _, c := range cs {
		cards = append(cards, commitCardOf(c, now))
	}
	return cards
}

// podDetail is the pod page.
type podDetail struct {
	Namespace, Name, Node, NodeAnchor    string
	Status, StatusClass, Ready, Restarts string
	IP, HostIP, Controller, Labels       string
	Started, Deleting                    when
	Commit, CommitShort                  string
	Conditions                           []conditionRow
	Init, Containers                     []containerRow
}

type conditionRow struct {
	Type, Status, Reason, Message string
	Class                         string
	Changed                       when
}

type containerRow struct {
	Name, Image, Ports string
	Ready              bool
	Restarts           int32
	State              stateView
	Last               *stateView
}

// stateView is a container state: Running, Waiting or Terminated, with
// its reason, message and times.
type stateView struct {
	Kind, Class, Reason, Message, Exit string
	Since, Finished                    when
}

func podPage(v api.PodView, now time.Time) podDetail {
	p := &v.Pod
	s := summarizePod(p)
	d := podDetail{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, NodeAnchor: nodeAnchor(p.Spec.NodeName),
		Status: s.Status, StatusClass: podStatusClass(s), Ready: fmt.Sprintf("%d/%d", s.Ready, s.Total), Restarts: s.restartsColumn(now),
		IP: p.Status.PodIP, HostIP: p.Status.HostIP, Controller: controllerOf(&p.ObjectMeta), Labels: formatLabels(p.Labels),
		Commit: v.Commit, CommitShort: shortSHA(v.Commit)}
	if p.Status.StartTime != nil {
		d.Started = whenOf(p.Status.StartTime.Time, now)
	}
	if p.DeletionTimestamp != nil {
		d.Deleting = whenOf(p.DeletionTimestamp.Time, now)
	}
	for _, c := range p.Status.Conditions {
		cls := classWarn
		if c.Status == corev1.ConditionTrue {
			cls = classOK
		}
		d.Conditions = append(d.Conditions, conditionRow{Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message,
			Class: cls, Changed: whenOf(c.LastTransitionTime.Time, now)})
	}
	d.Init = containerRows(p.Spec.InitContainers, p.Status.InitContainerStatuses, now)
	d.Containers = containerRows(p.Spec.Containers, p.Status.ContainerStatuses, now)
	return d
}

// containerRows pairs each container of the spec with its status. Env
// and command lines are left out: they may hold values a page should not.
func containerRows(cs []corev1.Container, statuses []corev1.ContainerStatus, now time.Time) []containerRow {
	rows := make([]containerRow, 0, len(cs))
	for _, c := range cs {
		row := containerRow{Name: c.Name, Image: c.Image, Ports: containerPorts(c.Ports),
			State: stateView{Kind: "Waiting", Class: classWarn, Reason: "not reported yet"}}
		if st, ok := containerStatusOf(statuses, c.Name); ok {
			row.Ready, row.Restarts = st.Ready, st.RestartCount
			row.State = stateOf(st.State, now)
			if l := st.LastTerminationState; l.Terminated != nil || l.Running != nil || l.Waiting != nil {
				ls := stateOf(l, now)
				row.Last = &ls
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func stateOf(s corev1.ContainerState, now time.Time) stateView {
	switch {
	case s.Running != nil:
		return stateView{Kind: "Running", Class: classOK, Since: whenOf(s.Running.StartedAt.Time, now)}
	case s.Terminated != nil:
		t := s.Terminated
		v := stateView{Kind: "Terminated", Class: classOK, Reason: t.Reason, Message: t.Message, Exit: fmt.Sprint(t.ExitCode),
			Since: whenOf(t.StartedAt.Time, now), Finished: whenOf(t.FinishedAt.Time, now)}
		if t.Signal != 0 {
			v.Exit += fmt.Sprintf(" (signal %d)", t.Signal)
		}
		if t.ExitCode != 0 {
			v.Class = classBad
		}
		return v
	case s.Waiting != nil:
		v := stateView{Kind: "Waiting", Class: classWarn, Reason: s.Waiting.Reason, Message: s.Waiting.Message}
		if podFailureReasons[s.Waiting.Reason] {
			v.Class = classBad
		}
		return v
	}
	return stateView{Kind: "Waiting", Class: classWarn}
}
