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

impl shapes::DeploymentStatus {
    /// The statuses of a deployment that is not over: the one definition the store, the
    /// driver and the handlers share.
    pub const ACTIVE: [shapes::DeploymentStatus; 5] = [
        shapes::DeploymentStatus::Created,
        shapes::DeploymentStatus::Queued,
        shapes::DeploymentStatus::InProgress,
        shapes::DeploymentStatus::Baking,
        shapes::DeploymentStatus::Ready,
    ];

    /// Whether a deployment with this status is over (Succeeded, Failed or Stopped).
    pub fn is_over(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }

    /// Whether a deployment with this status is not over yet.
    pub fn is_active(&self) -> bool {
        Self::ACTIVE.contains(self)
    }
}
