//! `GET /api/openapi.json`: an OpenAPI 3.0 document generated from the route table.

use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

use super::{Access, ROUTES};

pub async fn get_openapi() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// The document: every route of [`ROUTES`] with its access rule and the shared error shape.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let path = format!("/api{}", route.path);
        let mut op = Map::new();
        op.insert("summary".into(), route.summary.into());
        op.insert(
            "operationId".into(),
            route.operation.replace("::", "_").into(),
        );
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = if name == "id" {
                    json!({"type": "integer", "format": "int64"})
                } else {
                    json!({"type": "string"})
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        let mut responses = json!({
            "default": {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        });
        responses["2XX"] = json!({"description": "Success", "content": {"application/json": {}}});
        match route.access {
            Access::Public => {
                op.insert("security".into(), json!([]));
            }
            Access::Admin(role) => {
                op.insert("security".into(), json!([{"session": []}]));
                op.insert("x-keysync-role".into(), role.as_str().into());
                responses["401"] = json!({"description": "No session", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
                responses["403"] = json!({"description": "Role too low", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            }
        }
        op.insert("responses".into(), responses);
        let entry = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.to_owned(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "keysync API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "details": {"type": "object"}
                            }
                        }
                    }
                }
            }
        }
    })
}
