//! The deployment engine: the one place that decides what happens in a deployment: which hosts a
//! Server deployment targets ([`selection`]), which lifecycle events each target runs
//! ([`lifecycle`]), and what happens next in an in-place ([`run`], [`zonal`]) or blue/green
//! ([`blue_green`]) deployment. No I/O.

pub mod blue_green;
pub mod fleet;
pub mod lifecycle;
pub mod plan;
pub mod run;
pub mod selection;
pub mod timeline;
pub mod zonal;
