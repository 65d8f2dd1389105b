//! What every handler can reach: the node runtime and the API's settings.

use std::sync::Arc;

use picloud_actors::Runtime;

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest accepted request body, admin and invocation alike (413 above).
    pub body_limit: usize,
    /// PEM certificates git sync trusts for https remotes besides the built-in
    /// roots (`PICLOUD_GIT_CA_FILE`).
    pub git_roots: Option<Vec<u8>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit: 1024 * 1024,
            git_roots: None,
        }
    }
}

#[derive(Clone)]
pub struct ApiState {
    pub runtime: Arc<Runtime>,
    pub config: Arc<ApiConfig>,
}

impl ApiState {
    /// Send a command for `app_id` on behalf of `principal`; the app's state after it
    /// (`None` once the app is deleted).
    pub async fn command(
        &self,
        principal: &crate::auth::Principal,
        app_id: &str,
        command: picloud_actors::AppCommand,
    ) -> Result<Option<picloud_events::domain::App>, crate::error::ApiError> {
        let metadata = principal.metadata(&self.runtime.config.node_id);
        let outcome = self.runtime.command(app_id, command, metadata).await?;
        Ok(outcome.app)
    }

    /// `command` for commands after which the app still exists.
    pub async fn command_app(
        &self,
        principal: &crate::auth::Principal,
        app_id: &str,
        command: picloud_actors::AppCommand,
    ) -> Result<picloud_events::domain::App, crate::error::ApiError> {
        self.command(principal, app_id, command)
            .await?
            .ok_or_else(|| crate::error::ApiError::not_found("app"))
    }

    /// Run a user command on behalf of `principal`; the user's state after it.
    pub async fn user_command(
        &self,
        principal: &crate::auth::Principal,
        user_id: &str,
        command: picloud_actors::UserCommand,
    ) -> Result<Option<picloud_events::domain::User>, crate::error::ApiError> {
        let metadata = principal.metadata(&self.runtime.config.node_id);
        let outcome = self
            .runtime
            .user_command(user_id, command, metadata)
            .await?;
        Ok(outcome.user)
    }
}
