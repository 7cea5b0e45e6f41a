//! The deployment engine: the one place that decides what happens in a deployment. So far it
//! decides which hosts a Server deployment targets ([`selection`]) and which lifecycle events each
//! target runs ([`lifecycle`]); scheduling, waves and rollback build on these. No I/O.

pub mod blue_green;
pub mod lifecycle;
pub mod run;
pub mod selection;
