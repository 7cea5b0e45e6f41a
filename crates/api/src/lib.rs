//! The AWS CodeDeploy public API as Landfall serves it: the operations and shapes of the botocore
//! model (generated into [`shapes`]), the exceptions, the JSON codec and the request validation
//! that needs no stored state. No I/O, no panics on input.

pub mod codec;
pub mod error;
pub mod landfall;
pub mod predefined;
pub mod shapes;
pub mod validate;
pub mod wire;

pub use error::{ApiError, ApiResult, Exception};
pub use shapes::Operation;
pub use wire::Timestamp;
