//! Workflow Builder custom steps' pure side: the parameter types a step declares ([`ParamType`]), the check of the
//! inputs a `function_executed` event brings ([`validate_inputs`]: each error names the input) and the typing of an
//! output read from the call's answer ([`output_value`]). Table tests, no IO.

use serde_json::{Map, Value};

/// A step parameter's type, as `sluice.toml` writes it and as Slack's manifest names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    UserId,
    ChannelId,
}

/// The types `sluice.toml` accepts, for its error messages.
pub const TYPES: &str = "string, integer, boolean, user_id, channel_id";

impl ParamType {
    /// `"string"` → `String`; `None` for a type Sluice does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => ParamType::String,
            "integer" => ParamType::Integer,
            "boolean" => ParamType::Boolean,
            "user_id" => ParamType::UserId,
            "channel_id" => ParamType::ChannelId,
            _ => return None,
        })
    }

    /// The type as Slack's manifest writes it (`slack#/types/user_id` for Slack's own types).
    pub fn manifest_type(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
            ParamType::UserId => "slack#/types/user_id",
            ParamType::ChannelId => "slack#/types/channel_id",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Boolean => "true or false",
            ParamType::UserId => "a user id (U…)",
            ParamType::ChannelId => "a channel id (C…)",
        }
    }

    /// `v` as this type, or `None` when it is not one. Slack sends an integer as a number, but a value typed into a
    /// step by hand may arrive as its text: both are read.
    pub fn coerce(self, v: &Value) -> Option<Value> {
        let id = |prefixes: &[char], s: &str| {
            s.len() >= 3
                && s.starts_with(prefixes)
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        };
        match (self, v) {
            (ParamType::String, Value::String(_)) => Some(v.clone()),
            (ParamType::String, Value::Number(n)) => Some(Value::String(n.to_string())),
            (ParamType::Integer, Value::Number(n)) if n.is_i64() => Some(v.clone()),
            (ParamType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
            (ParamType::Boolean, Value::Bool(_)) => Some(v.clone()),
            (ParamType::Boolean, Value::String(s)) if s == "true" || s == "false" => {
                Some(Value::Bool(s == "true"))
            }
            (ParamType::UserId, Value::String(s)) if id(&['U', 'W'], s) => Some(v.clone()),
            (ParamType::ChannelId, Value::String(s)) if id(&['C', 'G', 'D'], s) => Some(v.clone()),
            _ => None,
        }
    }
}

/// One declared input or output of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub title: String,
    pub required: bool,
}

/// The inputs of a `function_executed` event checked against `declared`: `Ok` with each declared input typed
/// (absent optional ones left out), or the first problem, naming the input (`input "replicas" must be an integer,
/// got "three"`). Inputs the step does not declare are ignored, as Slack would not send them.
pub fn validate_inputs(declared: &[Param], inputs: &Value) -> Result<Map<String, Value>, String> {
    let given = match inputs {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err("the step's inputs are not an object".into()),
    };
    let mut out = Map::new();
    for p in declared {
        match given.get(&p.name) {
            None | Some(Value::Null) => {
                if p.required {
                    return Err(format!("input {:?} is required but was not given", p.name));
                }
            }
            Some(Value::String(s)) if s.is_empty() && p.required => {
                return Err(format!("input {:?} is required but was empty", p.name));
            }
            Some(v) => match p.ty.coerce(v) {
                Some(typed) => {
                    out.insert(p.name.clone(), typed);
                }
                None => {
                    return Err(format!(
                        "input {:?} must be {}, got {}",
                        p.name,
                        p.ty.describe(),
                        sluice_slack_wire::blocks::truncate(&v.to_string(), 80)
                    ))
                }
            },
        }
    }
    Ok(out)
}

/// Output `p`'s value from what its `from` found in the answer (`None`: nothing there), or why it cannot be given.
pub fn output_value(p: &Param, found: Option<&Value>) -> Result<Option<Value>, String> {
    match found {
        None | Some(Value::Null) => {
            if p.required {
                Err(format!(
                    "output {:?}: the answer did not contain it",
                    p.name
                ))
            } else {
                Ok(None)
            }
        }
        Some(v) => p.ty.coerce(v).map(Some).ok_or_else(|| {
            format!(
                "output {:?} must be {}, the answer gave {}",
                p.name,
                p.ty.describe(),
                sluice_slack_wire::blocks::truncate(&v.to_string(), 80)
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn param(name: &str, ty: &str, required: bool) -> Param {
        Param {
            name: name.into(),
            ty: ParamType::parse(ty).unwrap(),
            title: name.into(),
            required,
        }
    }

    #[test]
    fn inputs_are_typed_or_refused_naming_the_input() {
        let declared = [
            param("service", "string", true),
            param("replicas", "integer", false),
            param("dry", "boolean", false),
            param("owner", "user_id", false),
            param("room", "channel_id", false),
        ];
        let table: &[(Value, Result<Value, &str>)] = &[
            (
                json!({"service": "checkout"}),
                Ok(json!({"service": "checkout"})),
            ),
            (
                json!({"service": "a", "replicas": "3", "dry": true, "owner": "U0001", "room": "C0001", "extra": 1}),
                Ok(
                    json!({"service": "a", "replicas": 3, "dry": true, "owner": "U0001", "room": "C0001"}),
                ),
            ),
            (json!({}), Err("input \"service\" is required")),
            (
                json!({"service": ""}),
                Err("input \"service\" is required but was empty"),
            ),
            (
                json!({"service": "a", "replicas": "three"}),
                Err("input \"replicas\" must be an integer"),
            ),
            (
                json!({"service": "a", "replicas": 1.5}),
                Err("input \"replicas\" must be an integer"),
            ),
            (
                json!({"service": "a", "dry": "yes"}),
                Err("input \"dry\" must be true or false"),
            ),
            (
                json!({"service": "a", "owner": "alice"}),
                Err("input \"owner\" must be a user id"),
            ),
            (
                json!({"service": "a", "room": "U0001"}),
                Err("input \"room\" must be a channel id"),
            ),
            (json!([1]), Err("not an object")),
        ];
        for (inputs, want) in table {
            let got = validate_inputs(&declared, inputs);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(&Value::Object(g.clone()), w, "{inputs}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{inputs}: {g}"),
                _ => panic!("{inputs}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn outputs_are_typed_and_a_missing_required_one_is_an_error() {
        let version = param("version", "string", true);
        let count = param("count", "integer", false);
        assert_eq!(
            output_value(&version, Some(&json!("1.2"))),
            Ok(Some(json!("1.2")))
        );
        assert_eq!(
            output_value(&version, Some(&json!(3))),
            Ok(Some(json!("3")))
        );
        assert!(output_value(&version, None)
            .unwrap_err()
            .contains("did not contain"));
        assert_eq!(output_value(&count, None), Ok(None));
        assert_eq!(output_value(&count, Some(&json!("7"))), Ok(Some(json!(7))));
        assert!(output_value(&count, Some(&json!("x")))
            .unwrap_err()
            .contains("an integer"));
    }
}
