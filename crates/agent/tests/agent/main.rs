//! The host agent's tests: one binary, a module per part. Every test works in its own
//! temporary directory; scripts really run (as root here, and as `nobody` for runas).

mod support;

mod archive;
mod commands;
mod config;
mod hooks;
mod install;
mod logs;
mod properties;
mod retention;
mod s3;
