//! kube-sim: a simulated Kubernetes API server with controllers.
