//! The probe plan: one endpoint, how to observe its effect, what to expect. The same model
//! for the CLI (`--plan FILE` or flags) and the MCP tool.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request the probe sends.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::model::portable)]
pub struct RequestSpec {
    /// HTTP method (default POST for the target, GET to observe).
    #[serde(default)]
    #[schemars(with = "String")]
    pub method: Option<String>,
    /// An `http://` URL; loopback unless the operator allowed the host.
    pub url: String,
    /// Headers to send. `Authorization`, `Cookie` and `*-Token` values never appear in output.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body (sent with `Content-Type: application/json`); usually an object, any JSON
    /// value is accepted.
    #[serde(default)]
    #[schemars(with = "serde_json::Map<String, Value>")]
    pub body: Value,
}

/// How to read the state the target changes.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::model::portable)]
pub struct ObserveSpec {
    #[serde(default)]
    #[schemars(with = "String")]
    pub method: Option<String>,
    pub url: String,
    /// Headers; by default the target's headers are sent.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: Option<BTreeMap<String, String>>,
    /// JSON pointer to the number to read (`/value`); an array counts its elements, a boolean
    /// counts as 0 or 1.
    pub pointer: String,
}

/// The request that creates the resource a round acts on (`POST /accounts`), sent before each
/// round; the id it answers replaces `placeholder` in the other requests' URLs.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::model::portable)]
pub struct CreateSpec {
    pub request: RequestSpec,
    /// JSON pointer to the new resource's id in the response (`/id`).
    pub id_pointer: String,
    /// The text in the target, observe and reset URLs the id replaces (`{id}`).
    pub placeholder: String,
}

/// What the burst should show.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// N concurrent changes: did all of them take effect? (RC401)
    #[default]
    LostUpdate,
    /// At most `expect.max_successes` may succeed (a one-time coupon, stock of 1). (RC402)
    LimitOverrun,
    /// A burst should draw 429 or rate-limit headers. (RC403)
    RateLimit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::LostUpdate => "lost-update",
            Mode::LimitOverrun => "limit-overrun",
            Mode::RateLimit => "rate-limit",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::model::portable)]
pub struct Expect {
    /// How much the observed number should change per successful request (default 1).
    #[serde(default)]
    #[schemars(with = "f64")]
    pub delta_per_success: Option<f64>,
    /// How many requests may succeed per round (default 1), for `limit-overrun`.
    #[serde(default)]
    #[schemars(with = "u32")]
    pub max_successes: Option<u32>,
}

/// A probe of one endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::model::portable)]
pub struct Plan {
    pub target: RequestSpec,
    /// Where to read the state before and after each round (needed for `lost-update`).
    #[serde(default)]
    #[schemars(with = "ObserveSpec")]
    pub observe: Option<ObserveSpec>,
    /// A request sent before each round that creates the resource it acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "CreateSpec")]
    pub create: Option<CreateSpec>,
    /// A request sent before each round to restore the state (re-issue the coupon).
    #[serde(default)]
    #[schemars(with = "RequestSpec")]
    pub reset: Option<RequestSpec>,
    #[serde(default)]
    pub mode: Mode,
    /// Requests per burst (default 10, cap 50).
    #[serde(default)]
    #[schemars(with = "u32")]
    pub concurrency: Option<u32>,
    /// Bursts (default 3, cap 10).
    #[serde(default)]
    #[schemars(with = "u32")]
    pub rounds: Option<u32>,
    #[serde(default)]
    pub expect: Expect,
    /// Speak HTTP/2 without TLS (h2c, prior knowledge) and release the burst with the
    /// single-packet technique: every request's final frame in one write.
    #[serde(default)]
    pub http2: bool,
    /// Time allowed for one request, in ms (default 5,000, cap 30,000).
    #[serde(default)]
    #[schemars(with = "u32")]
    pub request_timeout_ms: Option<u64>,
    /// Time allowed for the whole probe, in ms (default 60,000, cap 300,000).
    #[serde(default)]
    #[schemars(with = "u32")]
    pub max_duration_ms: Option<u64>,
    /// The control URL of a running `racecheck interleave` proxy between the service and its
    /// database (`http://127.0.0.1:8001`): armed for each burst, it holds the requests' reads
    /// of an item until all have arrived, so the race shows with 2 requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub interleave: Option<String>,
}
