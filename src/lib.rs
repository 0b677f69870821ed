//! Roster: a listmonk-compatible Lists API server.

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod entity;
pub mod server;
pub mod service;
pub mod startup;
pub mod tally;
pub mod telemetry;

pub use config::Settings;
pub use startup::Application;
