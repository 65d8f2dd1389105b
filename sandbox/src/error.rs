//! How Rhai's errors become outcomes and compile errors.
//!
//! Limits are recognised on the innermost error (a limit hit inside a function or a
//! module arrives wrapped); data-size errors carry only a description ("Length of
//! string", "Size of array/BLOB", "Size of object map", and the literal variants of
//! the parser), which is mapped to the knob by what it names.

use rhai::{EvalAltResult, ParseError, ParseErrorType};

use crate::limits::Knob;
use crate::outcome::{CompileError, Outcome};
use crate::run_state::Stop;

/// The outcome of a run that ended with `err`. `script_name` is the source name of
/// the endpoint script: positions are reported in its text, not in a module's.
pub(crate) fn from_eval_error(err: &EvalAltResult, script_name: &str) -> Outcome {
    if let Some(outcome) = limit_outcome(err.unwrap_inner()) {
        return outcome;
    }
    // The innermost error raised by the endpoint script's own code has the most
    // precise position; errors inside module functions keep the call site.
    let mut at = err;
    while let EvalAltResult::ErrorInFunctionCall(_, source, inner, _) = at {
        if !(source.is_empty() || source == script_name) {
            break;
        }
        at = inner;
    }
    let pos = if at.position().is_none() {
        err.position()
    } else {
        at.position()
    };
    let full = err.to_string();
    let suffix = format!(" ({})", err.position());
    let message = match full.find('\n') {
        // The outer position is reported in `line`/`position`, not in the message.
        Some(end) if full[..end].ends_with(&suffix) => {
            format!("{}{}", &full[..end - suffix.len()], &full[end..])
        }
        _ => full.strip_suffix(&suffix).unwrap_or(&full).to_owned(),
    };
    Outcome::ScriptError {
        message,
        line: pos.line(),
        position: pos.position(),
    }
}

/// The outcome of a run whose script (compiled at run time) does not parse.
pub(crate) fn from_parse_error(err: &ParseError) -> Outcome {
    if let Some(knob) = parse_limit(&err.0) {
        return Outcome::LimitExceeded { limit: knob.name() };
    }
    let CompileError {
        message,
        line,
        position,
    } = compile_error(err);
    Outcome::ScriptError {
        message,
        line,
        position,
    }
}

/// A parse error as reported when a script is saved.
pub(crate) fn compile_error(err: &ParseError) -> CompileError {
    let ParseError(kind, pos) = err;
    CompileError {
        message: kind.to_string(),
        line: pos.line(),
        position: pos.position(),
    }
}

fn limit_outcome(err: &EvalAltResult) -> Option<Outcome> {
    let knob = match err {
        EvalAltResult::ErrorTerminated(token, _) => {
            let stop = token
                .as_immutable_string_ref()
                .ok()
                .and_then(|token| Stop::from_token(token.as_str()))
                .unwrap_or(Stop::DeadlinePassed);
            return Some(stop_outcome(stop));
        }
        EvalAltResult::ErrorTooManyOperations(_) => Knob::MaxOperations,
        EvalAltResult::ErrorStackOverflow(_) => Knob::MaxCallLevels,
        EvalAltResult::ErrorDataTooLarge(what, _) => data_limit(what),
        EvalAltResult::ErrorParsing(kind, _) => parse_limit(kind)?,
        _ => return None,
    };
    Some(Outcome::LimitExceeded { limit: knob.name() })
}

/// The outcome of a run that `on_progress` stopped.
pub(crate) fn stop_outcome(stop: Stop) -> Outcome {
    let knob = match stop {
        Stop::Cancelled | Stop::DeadlinePassed => return Outcome::Timeout,
        // The stack guard stands in for call depth, see `run_state.rs`.
        Stop::StackExhausted => Knob::MaxCallLevels,
        Stop::OperationsExhausted => Knob::MaxOperations,
    };
    Outcome::LimitExceeded { limit: knob.name() }
}

fn parse_limit(kind: &ParseErrorType) -> Option<Knob> {
    match kind {
        ParseErrorType::ExprTooDeep => Some(Knob::MaxExprDepth),
        ParseErrorType::LiteralTooLarge(what, _) => Some(data_limit(what)),
        _ => None,
    }
}

/// The knob a data-size error is about, from Rhai's description of the value.
fn data_limit(what: &str) -> Knob {
    let what = what.to_ascii_lowercase();
    if what.contains("string") {
        Knob::MaxStringSize
    } else if what.contains("map") {
        Knob::MaxMapSize
    } else {
        // "Size of array/BLOB", "Size of BLOB", "Size of array literal".
        Knob::MaxArraySize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Position;

    #[test]
    fn data_size_errors_name_their_knob() {
        for (what, knob) in [
            ("Length of string", "max_string_size"),
            ("Size of array/BLOB", "max_array_size"),
            ("Size of BLOB", "max_array_size"),
            ("Size of object map", "max_map_size"),
            ("Size of array literal", "max_array_size"),
            ("Number of properties in object map literal", "max_map_size"),
        ] {
            assert_eq!(data_limit(what).name(), knob, "{what}");
        }
    }

    #[test]
    fn limits_inside_functions_and_modules_are_still_limits() {
        let inner = EvalAltResult::ErrorTooManyOperations(Position::NONE);
        let wrapped = EvalAltResult::ErrorInModule(
            "m".into(),
            EvalAltResult::ErrorInFunctionCall(
                "f".into(),
                String::new(),
                inner.into(),
                Position::NONE,
            )
            .into(),
            Position::NONE,
        );
        assert_eq!(
            from_eval_error(&wrapped, ""),
            Outcome::LimitExceeded {
                limit: "max_operations"
            }
        );
    }
}
