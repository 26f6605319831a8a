//! kube-sim: a simulated Kubernetes API server with controllers.

pub mod controllers;
pub mod error;
pub mod generate;
pub mod injector;
pub mod store;

pub use error::{ApiError, Error};
pub use store::Store;
