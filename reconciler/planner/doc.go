// Package planner decides which pod runs on which node. Plan is a pure,
// deterministic function from the objects of one commit, the joined nodes,
// the previous placement and the pod status nodes reported to the desired
// state of every node plus the read models the CLI shows.
//
// It owns pod naming (Deployment pods are "<deployment>-<template-hash>-<suffix>",
// stable across scaling and unrelated commits), pod UIDs, scheduling
// (nodeSelector, required node affinity, spec.nodeName, stickiness, fewest
// pods first) and the computed status of pods and Deployments.
//
// Deployments roll out as in Kubernetes (rollout*.go): each template is a
// revision (templateHash) whose pods keep their names, UIDs and nodes
// until the rollout removes them; each plan takes the next step of a
// RollingUpdate (maxSurge, maxUnavailable) or Recreate rollout from the
// readiness nodes report. The revisions come back in the next Input
// (Output.DeploymentStates), like the Job states below.
//
// Jobs and CronJobs are planned with package batch (jobs.go, cronjobs.go):
// Jobs of Git and those CronJobs create get their pods scheduled like any
// other; their state (Output.JobStates, Output.CronJobStates) comes back
// in the next Input, so a finished Job never runs again and a CronJob slot
// runs once. Terminated Job pods stay on the node they ran on (so it keeps
// reporting their final phase) and are never scheduled anew elsewhere.
//
// It must not do I/O, read the clock, start goroutines or use randomness:
// the caller passes everything in (including Now) and persists what comes
// out (Output.Placement becomes the next Input.Previous). Same input, in any
// order, gives identical output. It never imports the node agent; the two
// meet only in package api.
package planner
