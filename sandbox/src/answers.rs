//! The one passage for the outside world's answers to a run.
//!
//! Every SDK call whose result the script does not decide alone (`http::*`
//! responses, `kv::*`, `secrets::get`, `time::now`, `crypto::uuid` and
//! `crypto::random_hex`, what `events::emit` and `invoke::later` answer) goes
//! through [`pass`]. A run is in one of three modes ([`Answers`]):
//!
//! - `Perform` (the default): the call is made; nothing else happens. The only
//!   cost is one look at the run's state, no allocation.
//! - `Record`: the call is made and its answer (or its error message) is appended
//!   to the run's [`Recording`], up to [`MAX_RECORDING_BYTES`]; past that, answers
//!   are counted in `dropped` and the recording is marked `truncated`.
//! - `Replay`: the call is not made; the next recorded answer is given back,
//!   provided the run asks what the recorded run asked (same call, same
//!   arguments). A call the recording cannot answer throws and is reported in
//!   [`RunResult::unanswered`](crate::RunResult), never guessed.
//!
//! Secrets are kept by reference: the recording holds the name asked for, never
//! the value, and a replay reads the secret's current value through the host.

use rhai::{EvalAltResult, INT};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run_state;

/// The most bytes (of JSON) one run's recorded answers may take.
pub const MAX_RECORDING_BYTES: usize = 64 * 1024;

/// How a run meets the outside world.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Answers {
    /// Every call is made.
    #[default]
    Perform,
    /// Every call is made and its answer recorded.
    Record,
    /// No call is made: the recording answers.
    Replay(Recording),
}

/// The answers one run got from the outside world, in the order it got them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub answers: Vec<Answer>,
    /// Answers were left out: the run got more than [`MAX_RECORDING_BYTES`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// How many answers were left out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u32,
    /// JSON bytes of the answers kept.
    #[serde(default)]
    pub bytes: usize,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One call and what the world answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The SDK function: `http::get`, `kv::get`, `time::now` …
    pub call: String,
    /// What it was asked (`{"key": …}`, `{"url": …}`); `null` when nothing.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub ask: Value,
    pub reply: Reply,
}

/// What a call answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Its value.
    Ok(Value),
    /// The script error it threw.
    Err(String),
    /// A value kept by reference only (a secret): a replay reads it anew.
    Reference,
}

/// How a call's answer is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    Value,
    /// The ask only (secrets): the value is read again on replay.
    Reference,
}

/// A run's answers as it goes (in its `RunHost`).
#[derive(Debug)]
pub(crate) enum Tape {
    Record(Recording),
    Replay {
        recording: Recording,
        next: usize,
        /// The first call the recording could not answer.
        unanswered: Option<String>,
    },
}

impl Tape {
    pub(crate) fn new(answers: Answers) -> Option<Tape> {
        match answers {
            Answers::Perform => None,
            Answers::Record => Some(Tape::Record(Recording::default())),
            Answers::Replay(recording) => Some(Tape::Replay {
                recording,
                next: 0,
                unanswered: None,
            }),
        }
    }

    /// What a finished run hands back: its recording (when recording) and the
    /// first call a replay could not answer.
    pub(crate) fn finish(tape: Option<Tape>) -> (Option<Recording>, Option<String>) {
        match tape {
            None => (None, None),
            Some(Tape::Record(recording)) => (Some(recording), None),
            Some(Tape::Replay { unanswered, .. }) => (None, unanswered),
        }
    }

    fn keep(recording: &mut Recording, answer: Answer) {
        let size = serde_json::to_string(&answer).map_or(usize::MAX, |json| json.len());
        if recording.truncated || recording.bytes.saturating_add(size) > MAX_RECORDING_BYTES {
            recording.truncated = true;
            recording.dropped = recording.dropped.saturating_add(1);
            return;
        }
        recording.bytes += size;
        recording.answers.push(answer);
    }

    /// The recorded reply to `call` asked `ask`, if the recording has it next.
    fn next(&mut self, call: &str, ask: &Value) -> Result<Reply, String> {
        let Tape::Replay {
            recording,
            next,
            unanswered,
        } = self
        else {
            return Err("replay: not replaying".into());
        };
        let found = match recording.answers.get(*next) {
            Some(answer) if answer.call == call && answer.ask == *ask => {
                *next += 1;
                return Ok(answer.reply.clone());
            }
            Some(answer) => format!(
                "{call}({ask}) where the recorded run called {}({})",
                answer.call, answer.ask
            ),
            None if recording.truncated => {
                format!("{call}({ask}) past the end of a truncated recording")
            }
            None => format!("{call}({ask}) that the recorded run never made"),
        };
        let message = format!("replay: unanswerable: {found}");
        unanswered.get_or_insert_with(|| message.clone());
        Err(message)
    }
}

/// A value an SDK call answers, as a recording keeps it.
pub(crate) trait Recordable: Sized {
    fn to_value(&self) -> Value;
    fn from_value(value: &Value) -> Option<Self>;
}

impl Recordable for () {
    fn to_value(&self) -> Value {
        Value::Null
    }
    fn from_value(_: &Value) -> Option<Self> {
        Some(())
    }
}

impl Recordable for INT {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn from_value(value: &Value) -> Option<Self> {
        value.as_i64()
    }
}

impl Recordable for bool {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn from_value(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl Recordable for String {
    fn to_value(&self) -> Value {
        Value::from(self.as_str())
    }
    fn from_value(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
}

impl Recordable for Vec<String> {
    fn to_value(&self) -> Value {
        Value::from(self.clone())
    }
    fn from_value(value: &Value) -> Option<Self> {
        value
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

/// A value that may be missing (`kv::get`): `{"value": …}` or `{}`.
impl Recordable for Option<Value> {
    fn to_value(&self) -> Value {
        match self {
            Some(value) => serde_json::json!({ "value": value }),
            None => serde_json::json!({}),
        }
    }
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.as_object()?.get("value").cloned())
    }
}

/// Every answer from outside the script passes here (see the module docs):
/// `perform` makes the call; `ask` says what was asked, built only when the run
/// records or replays.
pub(crate) fn pass<T: Recordable>(
    call: &'static str,
    keep: Keep,
    ask: impl FnOnce() -> Value,
    perform: impl FnOnce() -> Result<T, Box<EvalAltResult>>,
) -> Result<T, Box<EvalAltResult>> {
    enum Step {
        Perform,
        Record(Value),
        Replayed(Result<Reply, String>),
    }
    let step = run_state::with_state(|state| match state.host.tape.as_mut() {
        None => Step::Perform,
        Some(Tape::Record(_)) => Step::Record(ask()),
        Some(tape @ Tape::Replay { .. }) => {
            let ask = ask();
            Step::Replayed(tape.next(call, &ask))
        }
    })
    .unwrap_or(Step::Perform);
    match step {
        Step::Perform => perform(),
        Step::Replayed(Err(message)) => Err(message.into()),
        Step::Replayed(Ok(Reply::Err(message))) => Err(message.into()),
        Step::Replayed(Ok(Reply::Reference)) => perform(),
        Step::Replayed(Ok(Reply::Ok(value))) => T::from_value(&value).ok_or_else(|| {
            format!("replay: the recorded answer to {call} is not of the kind it returns").into()
        }),
        Step::Record(ask) => {
            let result = perform();
            let reply = match (&result, keep) {
                (Ok(_), Keep::Reference) => Reply::Reference,
                (Ok(value), Keep::Value) => Reply::Ok(value.to_value()),
                (Err(err), _) => match err.as_ref() {
                    EvalAltResult::ErrorRuntime(message, _) => Reply::Err(message.to_string()),
                    // A stop (timeout, cancel): the run ends here, nothing to answer.
                    _ => return result,
                },
            };
            run_state::with_state(|state| {
                if let Some(Tape::Record(recording)) = state.host.tape.as_mut() {
                    Tape::keep(
                        recording,
                        Answer {
                            call: call.to_owned(),
                            ask,
                            reply,
                        },
                    );
                }
            });
            result
        }
    }
}
