package manifest

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
)

// Allow-lists of Secrets and of the pod spec fields that use them:
// env[].valueFrom, envFrom, volumes, volumeMounts and imagePullSecrets.
// allowlist.go refers to the pod spec entries by name. What the fields
// may hold is checked in validate_secret.go and validate_podsecrets.go,
// and whether the Secrets they name exist in crosscheck_secret.go.

// noConfigMaps is the message for every ConfigMap reference.
const noConfigMaps = unsupported("ConfigMaps are not supported yet; put the values in a Secret (which reads them from Vault) and refer to it instead")

// secretFields is a v1 Secret. data and stringData are allowed through
// here so that validateSecret can explain why values do not belong in Git
// (or accept them on a development server, see Options.AllowPlainSecrets).
var secretFields = fields{
	"apiVersion": value,
	"kind":       value,
	"metadata":   objectMeta,
	"type":       value,
	"data":       value,
	"stringData": value,
	"immutable":  value, // only false: checked in validateSecret
}

// envFields is containers[].env[].
var envFields = fields{
	"name":  value,
	"value": value,
	"valueFrom": fields{
		"secretKeyRef":     fields{"name": value, "key": value, "optional": value},
		"fieldRef":         fields{"fieldPath": value, "apiVersion": value},
		"configMapKeyRef":  noConfigMaps,
		"resourceFieldRef": unsupported("not supported by moor: moor sets no resource requests or limits, so there is nothing to read; remove it"),
		"fileKeyRef":       unsupported("not supported by moor yet; mount a Secret volume and read the file, or use valueFrom.secretKeyRef"),
	},
}

// envFromFields is containers[].envFrom[].
var envFromFields = fields{
	"secretRef":    fields{"name": value, "optional": value},
	"prefix":       value,
	"configMapRef": noConfigMaps,
}

// subPathRejected explains why subPath is not supported.
const subPathRejected = unsupported("not supported by moor: a file mounted with subPath is copied once and never updates when its Secret rotates; mount the whole volume at a directory and read the file from there (use items to pick keys and file names)")

// volumeMountFields is containers[].volumeMounts[].
var volumeMountFields = fields{
	"name":        value,
	"mountPath":   value,
	"readOnly":    value,
	"subPath":     subPathRejected,
	"subPathExpr": subPathRejected,
}

// imagePullSecretFields is spec.imagePullSecrets[].
var imagePullSecretFields = fields{"name": value}

// volumeFields is spec.volumes[]: only secret volumes. Every other volume
// source is rejected naming its field.
var volumeFields = secretVolumeFields()

func secretVolumeFields() fields {
	// Rejected even when empty: emptyDir: {} is a volume.
	other := rejected("not supported by moor yet: the only volumes moor mounts are secret volumes (secret: {secretName: ...}); remove this volume or run this workload on Kubernetes")
	f := fields{}
	for name := range jsonFields(reflect.TypeFor[corev1.VolumeSource]()) {
		f[name] = other
	}
	f["configMap"] = rejected(noConfigMaps)
	f["name"] = value
	f["secret"] = fields{
		"secretName":  value,
		"items":       fields{"key": value, "path": value, "mode": value},
		"defaultMode": value,
		"optional":    value,
	}
	return f
}
