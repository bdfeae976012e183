//! The cbs dialect. (Being written.)

use crate::routing::Endpoint;

pub(crate) fn endpoints() -> Vec<Endpoint> {
    Vec::new()
}
