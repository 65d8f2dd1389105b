//! # picloud-deploy
//!
//! The deploy engine: a project folder ([`project`]), the plan that makes an app on
//! a server match it ([`plan`], a pure function of the two states), and applying
//! that plan through the admin API ([`apply`]). No terminal input or output here:
//! the CLI's `deploy` command prints and asks; git sync can drive the same engine
//! inside a node (this crate depends on `actors`, never on `api`, so `api` may use it).

pub mod apply;
pub mod diff;
pub mod git;
pub mod plan;
pub mod project;

pub use apply::{AdminApi, ApiCallError, ApplyError, apply, fetch_state};
pub use plan::{Change, Op, Plan, PlanError, ServerState, plan};
pub use project::{Project, ProjectError};
