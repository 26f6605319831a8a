//! istio-proxy-reset
