//! The sandbox as the executor slots and the API use it: real scripts, real runs.

mod common;

mod concurrency;
mod ctx;
mod http;
mod limits;
mod modules;
mod record;
mod results;
mod sdk;
mod stack;
