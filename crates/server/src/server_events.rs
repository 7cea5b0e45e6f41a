//! Lifecycle events the server carries out itself (traffic events, a Lambda or ECS
//! deployment's events): their ends recorded as an agent's completion would be.

use landfall_store::HostCommandRecord;

use crate::state::AppState;

/// Records the end of an event the server carries out itself (a traffic event, a Lambda hook's
/// report or traffic shift), as an agent's completion would; whether it was recorded.
pub async fn complete_on_server(
    state: &AppState,
    command: &HostCommandRecord,
    succeeded: bool,
    message: String,
) -> bool {
    let diagnostics = landfall_api::shapes::Diagnostics {
        error_code: Some(if succeeded {
            landfall_api::shapes::LifecycleErrorCode::Success
        } else {
            landfall_api::shapes::LifecycleErrorCode::UnknownError
        }),
        script_name: Some(String::new()),
        message: Some(message),
        log_tail: Some(String::new()),
    };
    match state
        .store
        .complete_command(&command.id, &command.target_id, succeeded, &diagnostics, state.clock.now())
        .await
    {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(command = %command.id, %error, "cannot complete a lifecycle event");
            false
        }
    }
}
