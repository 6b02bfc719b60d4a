//! Typed `Runtime` and `Debugger` commands for reading objects of the
//! target by reference: evaluate into an object group, find every object
//! with a prototype, call a function on a remote object, list properties
//! (internal ones included), name scripts. Objects stay alive in their
//! group until [`Session::release_object_group`].

use crate::{Error, Event, Result, Session};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// `Runtime.RemoteObject`: a reference to an object in the target, or a
/// primitive value.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteObject {
    /// Absent for primitives.
    pub object_id: Option<String>,
    /// The value, for primitives and results returned by value.
    pub value: Option<Value>,
}

/// `Runtime.PropertyDescriptor` / `InternalPropertyDescriptor`.
#[derive(Debug, Clone, Deserialize)]
pub struct PropertyDescriptor {
    pub name: String,
    pub value: Option<RemoteObject>,
}

/// The reply of `Runtime.getProperties`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    #[serde(default)]
    pub result: Vec<PropertyDescriptor>,
    /// `[[FunctionLocation]]`, `[[TargetFunction]]`, `[[Scopes]]`...
    #[serde(default)]
    pub internal_properties: Vec<PropertyDescriptor>,
}

#[derive(Deserialize)]
struct Wrapped {
    result: RemoteObject,
}

impl Session {
    /// `Runtime.evaluate` of `expression`, its result kept in `group`
    /// (exceptions not reported to the target's console).
    pub async fn evaluate_object(&self, expression: &str, group: &str) -> Result<RemoteObject> {
        let r: Wrapped = self.call("Runtime.evaluate", json!({ "expression": expression, "objectGroup": group, "silent": true })).await?;
        Ok(r.result)
    }

    /// `Runtime.queryObjects`: an array of every live object with this
    /// prototype, kept in `group`. V8 runs a full GC first (a pause of the
    /// target), hence the separate `timeout`.
    pub async fn query_objects(&self, prototype_id: &str, group: &str, timeout: Option<Duration>) -> Result<RemoteObject> {
        #[derive(Deserialize)]
        struct Objects {
            objects: RemoteObject,
        }
        let r: Objects = self
            .call_with_timeout("Runtime.queryObjects", json!({ "prototypeObjectId": prototype_id, "objectGroup": group }), timeout)
            .await?;
        Ok(r.objects)
    }

    /// `Runtime.callFunctionOn`: `function` (a declaration, `this` = the
    /// object) called on `object_id`, its result kept in `group`.
    pub async fn call_function_on(&self, object_id: &str, function: &str, group: &str, silent: bool) -> Result<RemoteObject> {
        let mut params = json!({ "functionDeclaration": function, "objectId": object_id, "objectGroup": group });
        if silent {
            params["silent"] = Value::Bool(true);
        }
        let r: Wrapped = self.call("Runtime.callFunctionOn", params).await?;
        Ok(r.result)
    }

    /// `Runtime.callFunctionOn` with the result returned by value (JSON).
    pub async fn call_function_on_value(&self, object_id: &str, function: &str, group: &str) -> Result<Value> {
        #[derive(Deserialize)]
        struct ByValue {
            result: ValueHolder,
        }
        #[derive(Deserialize)]
        struct ValueHolder {
            value: Value,
        }
        let r: ByValue = self
            .call(
                "Runtime.callFunctionOn",
                json!({ "functionDeclaration": function, "objectId": object_id, "returnByValue": true, "objectGroup": group }),
            )
            .await?;
        Ok(r.result.value)
    }

    /// `Runtime.getProperties` (own properties).
    pub async fn own_properties(&self, object_id: &str) -> Result<Properties> {
        self.call("Runtime.getProperties", json!({ "objectId": object_id, "ownProperties": true })).await
    }

    /// `Runtime.releaseObjectGroup`.
    pub async fn release_object_group(&self, group: &str) -> Result<()> {
        let _: Value = self.call("Runtime.releaseObjectGroup", json!({ "objectGroup": group })).await?;
        Ok(())
    }

    /// `file:line:column` (1-based) where a function is defined, from its
    /// `[[FunctionLocation]]` (through `[[TargetFunction]]` for a bound
    /// one); `scripts` names the script ids (see [`Session::script_urls`]).
    pub async fn function_location(&self, id: &str, scripts: &HashMap<String, String>) -> Result<Option<String>> {
        let mut id = id.to_string();
        for _ in 0..4 {
            let p = self.own_properties(&id).await?;
            if let Some(loc) =
                p.internal_properties.iter().find(|p| p.name == "[[FunctionLocation]]").and_then(|p| p.value.as_ref()?.value.clone())
            {
                let script = loc.get("scriptId").and_then(Value::as_str).unwrap_or("");
                let line = loc.get("lineNumber").and_then(Value::as_u64).unwrap_or(0) + 1;
                let col = loc.get("columnNumber").and_then(Value::as_u64).unwrap_or(0) + 1;
                let url = scripts.get(script).map(|u| u.strip_prefix("file://").unwrap_or(u).to_string());
                return Ok(Some(format!("{}:{line}:{col}", url.unwrap_or_else(|| format!("script {script}")))));
            }
            match p.internal_properties.iter().find(|p| p.name == "[[TargetFunction]]").and_then(|p| p.value.as_ref()?.object_id.clone()) {
                Some(target) => id = target,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// scriptId -> URL of every script, from the Debugger domain's
    /// `scriptParsed` events (sent for all existing scripts on enable); the
    /// domain is disabled again before returning.
    pub async fn script_urls(&self) -> Result<HashMap<String, String>> {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let mut events = self.subscribe();
        let mut urls = HashMap::new();
        let mut note = |ev: Event| {
            if ev.method == "Debugger.scriptParsed" {
                let id = ev.params.get("scriptId").and_then(Value::as_str);
                let url = ev.params.get("url").and_then(Value::as_str);
                if let (Some(id), Some(url)) = (id, url) {
                    if !url.is_empty() {
                        urls.insert(id.to_string(), url.to_string());
                    }
                }
            }
        };
        // Read the events while they come (an app can have more scripts than
        // the event buffer holds); they all come before the reply.
        let enable = self.call::<_, Value>("Debugger.enable", json!({}));
        tokio::pin!(enable);
        loop {
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Ok(ev) => note(ev),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Err(Error::Closed { during: " while listing its scripts".into() }),
                },
                r = &mut enable => { r?; break; }
            }
        }
        loop {
            match events.try_recv() {
                Ok(ev) => note(ev),
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        let _: Value = self.call("Debugger.disable", json!({})).await?;
        Ok(urls)
    }
}
