//! Why a cluster operation stopped, typed so the layers above can tell a bad option from a
//! cloud failure without reading the message.

use super::api::ApiError;

/// Why a cluster operation stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// What the user asked for cannot be: an image, flavor, network, pool or zone the
    /// cloud does not have, a launch missing a required option, `--resume` of nothing.
    /// The CLI reports these as bad options.
    #[error("{0}")]
    Invalid(String),
    /// A cloud API call failed; keeps the service's HTTP status (`ApiError::status`).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Anything else: a timeout, a resource that went into error, a refused quota.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for ClusterError {
    fn from(msg: String) -> Self {
        ClusterError::Failed(msg)
    }
}

impl ClusterError {
    /// The HTTP status of a failed API call, if that is what stopped the operation.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClusterError::Api(e) => e.status,
            _ => None,
        }
    }
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
