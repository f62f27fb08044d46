package manifest

// The allow-list: every field moor implements, per kind. A field that is
// not listed is an error naming its exact path. To support a field, add it
// here (and validate it in validate.go); to give a rejected field a better
// message than notSupported, list it as unsupported("...").

// clusterSet is the message for metadata the cluster writes, which
// `kubectl get -o yaml` and `--dry-run -o yaml` print.
const clusterSet = unsupported("set by the cluster, not written in Git; remove it")

// statusField rejects status on every kind.
const statusField = unsupported("status is reported by moor from what the nodes run, not written in Git; remove it")

// objectMeta is metadata.* of namespaced objects.
var objectMeta = fields{
	"name":        value,
	"namespace":   value,
	"labels":      value,
	"annotations": value,

	"generateName":               unsupported("not supported by moor: every object needs a fixed metadata.name so each commit plans the same objects; set metadata.name instead"),
	"uid":                        clusterSet,
	"resourceVersion":            clusterSet,
	"generation":                 clusterSet,
	"creationTimestamp":          clusterSet,
	"deletionTimestamp":          clusterSet,
	"deletionGracePeriodSeconds": clusterSet,
	"managedFields":              clusterSet,
	"selfLink":                   clusterSet,
}

// clusterMeta is metadata.* of cluster-scoped objects.
var clusterMeta = with(objectMeta, fields{
	"namespace": unsupported("this kind is cluster-scoped and has no namespace; remove metadata.namespace"),
})

// templateMeta is spec.template.metadata.*.
var templateMeta = fields{"labels": value, "annotations": value}

var containerFields = fields{
	"name":            value,
	"image":           value,
	"command":         value,
	"args":            value,
	"workingDir":      value,
	"imagePullPolicy": value,
	// Secrets: env, envFrom and volumeMounts are in allowlist_secret.go.
	"env":          envFields,
	"envFrom":      envFromFields,
	"volumeMounts": volumeMountFields,
	// Ports are informational, as in Kubernetes.
	"ports": fields{"name": value, "containerPort": value, "protocol": value},
	// Probes: probeFields and their validation are in validate_probe.go.
	"readinessProbe": probeFields,
	"livenessProbe":  probeFields,
	"startupProbe":   probeFields,
}

// podSpec is a bare Pod's spec.
var podSpec = fields{
	"containers":                    containerFields,
	"restartPolicy":                 value,
	"nodeSelector":                  value,
	"nodeName":                      value,
	"terminationGracePeriodSeconds": value,
	// Secrets: volumes and imagePullSecrets are in allowlist_secret.go.
	"volumes":          volumeFields,
	"imagePullSecrets": imagePullSecretFields,
}

// templatePodSpec is spec.template.spec of a workload.
var templatePodSpec = with(podSpec, fields{
	"nodeName": unsupported("not supported in a pod template: it would put every replica on one node; use nodeSelector"),
})

var namespaceFields = fields{
	"apiVersion": value,
	"kind":       value,
	"metadata":   clusterMeta,
	"spec":       fields{},
	"status":     statusField,
}

var podFields = fields{
	"apiVersion": value,
	"kind":       value,
	"metadata":   objectMeta,
	"spec":       podSpec,
	"status":     statusField,
}

var deploymentFields = fields{
	"apiVersion": value,
	"kind":       value,
	"metadata":   objectMeta,
	"spec": fields{
		"replicas": value,
		"selector": fields{
			"matchLabels":      value,
			"matchExpressions": fields{"key": value, "operator": value, "values": value},
		},
		"template":             fields{"metadata": templateMeta, "spec": templatePodSpec},
		"revisionHistoryLimit": value,
		"minReadySeconds":      value,
		// Rollouts: strategy, progressDeadlineSeconds and paused are
		// validated in validate_deployment.go.
		"strategy": fields{
			"type":          value,
			"rollingUpdate": fields{"maxSurge": value, "maxUnavailable": value},
		},
		"progressDeadlineSeconds": value,
		"paused":                  value,
	},
	"status": statusField,
}

// trafficPolicy fields are accepted with their only implemented value,
// Cluster (checked in validateService), since `kubectl get -o yaml` prints
// them.
var serviceFields = fields{
	"apiVersion": value,
	"kind":       value,
	"metadata":   objectMeta,
	"spec": fields{
		"type":     value,
		"selector": value,
		"ports": fields{
			"name":        value,
			"protocol":    value,
			"port":        value,
			"targetPort":  value,
			"nodePort":    value,
			"appProtocol": unsupported("not supported by moor yet; remove it (moor proxies TCP and UDP without looking at the application protocol)"),
		},
		"clusterIP":                value,
		"clusterIPs":               value,
		"sessionAffinity":          value,
		"sessionAffinityConfig":    fields{"clientIP": fields{"timeoutSeconds": value}},
		"publishNotReadyAddresses": value,
		"ipFamilies":               value,
		"ipFamilyPolicy":           value,
		"internalTrafficPolicy":    value,
		"externalTrafficPolicy":    value,
		"externalName":             unsupported("ExternalName Services are not supported by moor yet; remove it and use a Service with a selector"),
		"externalIPs":              unsupported("not supported by moor yet: reach the Service through a NodePort (type: NodePort) instead"),
		"loadBalancerIP":           unsupported("not supported by moor: moor has no load balancer and serves type: LoadBalancer as NodePort; remove it"),
		"loadBalancerSourceRanges": unsupported("not supported by moor: moor has no load balancer and serves type: LoadBalancer as NodePort; remove it"),
	},
	"status": statusField,
}

// listFields is a v1 List; its items are checked one by one as objects.
var listFields = fields{
	"apiVersion": value,
	"kind":       value,
	"metadata":   fields{},
	"items":      value,
}

// with returns a copy of base with the entries of over added or replaced.
func with(base, over fields) fields {
	out := make(fields, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
