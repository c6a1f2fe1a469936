//! Text to [`Registry`]: YAML or JSON, strict. Each cluster and service is
//! decoded on its own so that one bad entry does not hide the next, and
//! each field of a bad entry on its own (`parse/isolate.rs`) so that one bad field
//! does not hide the next: `check` lists every problem, not only the first,
//! each with its path, line and column.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{Problem, RegistryError};
use super::locate::locate;
use super::model::Registry;
use super::yaml;

mod focused;
mod isolate;
mod path;
mod poison;

/// The top-level keys a registry may have.
const TOP_LEVEL_KEYS: [&str; 3] = ["clusters", "services", "defaults"];

/// Parses registry text. `origin` names the source in errors (a file path).
///
/// JSON is recognised by its leading `{`; everything else is read as YAML.
/// An empty document is an error, not an empty registry: an empty file is
/// far more often a write caught half-way than a wish to serve nothing.
pub fn parse(text: &str, origin: &str) -> Result<Registry, RegistryError> {
    let json = text.trim_start().starts_with('{');
    // A well-formed registry decodes straight into the model, which at
    // 100,000 services is several times faster and smaller than going
    // through a document tree. Anything that fails (or is empty) takes the
    // slow path below, which explains every problem with its path.
    let direct = if json {
        serde_json::from_str::<Registry>(text).ok()
    } else {
        serde_saphyr::from_str_with_options::<Registry>(text, yaml::direct_options(text)).ok()
    };
    if let Some(registry) = direct.filter(|r| !r.clusters.is_empty() || !r.services.is_empty()) {
        return Ok(registry);
    }
    let (format, value) =
        if json {
            let value = serde_json::from_str::<Value>(text).map_err(|e| RegistryError::Syntax {
                origin: origin.to_string(),
                format: "JSON",
                message: e.to_string(),
            })?;
            ("JSON", value)
        } else {
            let value = serde_saphyr::from_str_with_options::<Value>(text, yaml::options())
                .map_err(|e| RegistryError::Syntax {
                    origin: origin.to_string(),
                    format: "YAML",
                    // In the words meant for users, not for the parser's
                    // developers ("set DuplicateKeyPolicy in Options");
                    // the parser calls its input `<input>`: say which file.
                    message: e
                        .render_with_formatter(&serde_saphyr::UserMessageFormatter)
                        .replace("<input>", origin),
                })?;
            ("YAML", value)
        };
    let object = match value {
        Value::Object(object) => object,
        Value::Null => {
            return Err(RegistryError::Syntax {
                origin: origin.to_string(),
                format,
                message: "the document is empty".to_string(),
            });
        }
        other => {
            return Err(RegistryError::Syntax {
                origin: origin.to_string(),
                format,
                message: format!(
                    "expected a mapping with `clusters` and `services`, found {}",
                    kind(&other)
                ),
            });
        }
    };

    let mut problems = Vec::new();
    for key in object.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            problems.push(Problem::new(
                key.clone(),
                format!(
                    "unknown field `{key}`, expected one of `clusters`, `services`, `defaults`"
                ),
            ));
        }
    }
    let registry = Registry {
        clusters: list(&object, "clusters", &mut problems),
        services: list(&object, "services", &mut problems).into(),
        defaults: single(&object, "defaults", &mut problems).unwrap_or_default(),
    };
    if json && problems.is_empty() {
        // The tree keeps one value of a name repeated in a JSON object:
        // a repeat that the direct decode refused is found again there.
        problems.extend(repeated_name(text));
    }
    locate(text, &mut problems);
    // In the order of the file (the decoding went field by field in
    // alphabetical order); problems without a place come first.
    problems.sort_by_key(|p| p.location.map(|at| (at.line, at.column)));
    RegistryError::unless_problems(origin, problems, registry)
}

/// The first name repeated in one JSON object of `text`, with its path:
/// the direct decode's error when that is serde's "duplicate field" or the
/// model's "duplicate key" (YAML's tree refuses repeats itself).
fn repeated_name(text: &str) -> Option<Problem> {
    let mut decoder = serde_json::Deserializer::from_str(text);
    let error = serde_path_to_error::deserialize::<_, Registry>(&mut decoder).err()?;
    // serde_json adds " at line L column C"; the line and column are
    // given back from the path, like every other problem's.
    let message = error.inner().to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(message, _)| message);
    message
        .starts_with("duplicate ")
        .then(|| Problem::new(error.path().to_string(), message))
}

/// Decodes `object[key]` as a list, element by element, recording a problem
/// (with its path) for each element that does not decode.
fn list<T: DeserializeOwned>(
    object: &serde_json::Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Vec<T> {
    let items = match object.get(key) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            problems.push(Problem::new(
                key,
                format!("expected a list, found {}", kind(other)),
            ));
            return Vec::new();
        }
    };
    let mut decoded = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match T::deserialize(item) {
            Ok(value) => decoded.push(value),
            Err(_) => {
                for found in isolate::problems::<T>(item) {
                    let inner = path::render(&found.path);
                    let path = if inner.is_empty() {
                        format!("{key}[{i}]")
                    } else if inner.starts_with('[') {
                        format!("{key}[{i}]{inner}")
                    } else {
                        format!("{key}[{i}].{inner}")
                    };
                    problems.push(Problem::new(path, found.message));
                }
            }
        }
    }
    decoded
}

/// Decodes `object[key]` as one value, recording a problem (with its
/// path) for each field that does not decode; `None` when it is absent or
/// does not decode.
fn single<T: DeserializeOwned>(
    object: &serde_json::Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let value = object.get(key).filter(|v| !v.is_null())?;
    match T::deserialize(value) {
        Ok(decoded) => Some(decoded),
        Err(_) => {
            for found in isolate::problems::<T>(value) {
                let inner = path::render(&found.path);
                let path = if inner.is_empty() {
                    key.to_string()
                } else {
                    format!("{key}.{inner}")
                };
                problems.push(Problem::new(path, found.message));
            }
            None
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests;
