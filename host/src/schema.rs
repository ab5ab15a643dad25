//! Tool argument validation against the tool's JSON Schema, before any plugin code
//! runs.

use serde_json::Value;

/// A compiled input schema.
pub struct ArgumentValidator {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for ArgumentValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArgumentValidator")
    }
}

impl ArgumentValidator {
    /// Compiles an input schema; it must describe an object.
    pub fn new(schema: &Value) -> Result<Self, String> {
        let obj = schema.as_object().ok_or("the input schema is not a JSON object")?;
        if obj.get("type").and_then(Value::as_str) != Some("object") {
            return Err("the input schema must have \"type\": \"object\"".into());
        }
        let validator = jsonschema::validator_for(schema).map_err(|e| format!("invalid input schema: {e}"))?;
        Ok(ArgumentValidator { validator })
    }

    /// Checks arguments; the error names each offending field.
    pub fn validate(&self, args: &Value) -> Result<(), String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(args)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("`{}`: {e}", at.trim_start_matches('/').replace('/', "."))
                }
            })
            .collect();
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_the_field() {
        let v = ArgumentValidator::new(&json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "days": {"type": "integer", "minimum": 0}},
            "required": ["days"],
        }))
        .unwrap();
        assert!(v.validate(&json!({"days": 3})).is_ok());
        let e = v.validate(&json!({"path": 7, "days": 1})).unwrap_err();
        assert!(e.contains("`path`"), "{e}");
        let e = v.validate(&json!({"days": -1})).unwrap_err();
        assert!(e.contains("`days`"), "{e}");
        let e = v.validate(&json!({})).unwrap_err();
        assert!(e.contains("days"), "{e}");
        assert!(ArgumentValidator::new(&json!({"type": "string"})).is_err());
    }
}
