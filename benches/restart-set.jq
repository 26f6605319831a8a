# The kubectl+jq way of finding the workloads to restart after an Istio upgrade, as operators
# ran it before istio-proxy-reset:
#
#   kubectl get namespaces,pods,replicasets,deployments,statefulsets,daemonsets,jobs,cronjobs \
#     -A -o json | jq -r --arg expected 1.24.1 -f benches/restart-set.jq
#
# It applies the basic rules of DESIGN §2 that one jq program can: proxy containers (and native
# sidecars) named istio-proxy, the version in the image tag (flavours -distroless/-debug/-fips
# ignored, so a mirror registry with the right version is current), the skip label or annotation
# on the pod, its namespace or its owners, sidecar.istio.io/proxyImage, terminating and completed
# pods, controller owner references walked Pod → ReplicaSet → Deployment/Rollout and Pod → Job →
# CronJob, a workload is restarted only when at least one of its stale pods is Running and Ready,
# paused Deployments, Jobs, CronJobs and bare pods are left to a person.
#
# Prints one line per workload that gets an automatic action: `Kind namespace/name`.

def skip: ((.metadata.labels // {}) + (.metadata.annotations // {}))
  | .["istio-proxy-reset.kyma-project.io/skip"] == "true";
def controller: (.metadata.ownerReferences // []) | map(select(.controller == true)) | first;
def key: "\(.kind) \(.metadata.namespace // "")/\(.metadata.name)";
def version: capture("(?<v>[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?)$").v
  | sub("(-(distroless|debug|fips))+$"; "");

.items as $items
| ($items | map(select(.kind == "Namespace") | {key: .metadata.name, value: skip}) | from_entries) as $ns
| ($items
   | map(select(.kind | IN("ReplicaSet", "Deployment", "StatefulSet", "DaemonSet",
                          "ReplicationController", "Job", "CronJob", "Rollout"))
         | {key: key, value: {controller: controller, skip: skip, paused: (.spec.paused == true),
                              kind: .kind}})
   | from_entries) as $owners
| [ $items[]
    | select(.kind == "Pod")
    | select(skip | not)
    | select(.metadata.annotations["sidecar.istio.io/proxyImage"] == null)
    | select(.metadata.deletionTimestamp == null and .status.phase != "Succeeded")
    | select($ns[.metadata.namespace] != true)
    | ((.spec.containers + (.spec.initContainers // []))
       | map(select(.name == "istio-proxy")) | first) as $proxy
    | select($proxy != null)
    | select((($proxy.image // "") | split("@")[0] | split("/") | last | split(":")[1] // "" | version? // null) != $expected)
    | .metadata.namespace as $n
    | ([.status.conditions[]? | select(.type == "Ready") | .status] == ["True"]
       and .status.phase == "Running") as $ready
    # Walk controller references up to the workload.
    | {kind: "Pod", ref: controller, name: .metadata.name, ok: true}
    | until(.ref == null or .ok == false;
        ($owners["\(.ref.kind) \($n)/\(.ref.name)"]) as $o
        | if $o == null then
            if (.ref.kind | IN("ReplicaSet", "Deployment", "StatefulSet", "DaemonSet",
                                "ReplicationController", "Job", "CronJob", "Rollout"))
            then .ok = false                       # owner missing: a person decides
            else {kind: .ref.kind, name: .ref.name, ref: null, ok: .ok} end
          elif $o.skip then .ok = false
          else {kind: .ref.kind, name: .ref.name, ref: $o.controller, ok: .ok,
                paused: $o.paused} end)
    | select(.ok)
    | {workload: "\(.kind) \($n)/\(.name)", kind, paused, ready: $ready} ]
| group_by(.workload)[]
| select(any(.[]; .ready))
| .[0]
| select(.kind | IN("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
                    "ReplicationController", "Rollout"))
| select(.paused != true)
| .workload
