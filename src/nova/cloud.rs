//! Reaching the cloud the way OpenStack tools do: a clouds.yaml cloud (`--os-cloud`,
//! `OS_CLOUD`, or the inventory's `[nova] cloud`), else the `OS_*` environment
//! variables. Authentication, the service catalog and microversions are the
//! openstack_sdk crate's; credentials never leave it (never printed, never on a
//! command line, no token cache written to disk).

use openstack_sdk::api::rest_endpoint_prelude::*;
use openstack_sdk::api::{Query, ignore};
use openstack_sdk::config::{CloudConfig, ConfigFile};
use openstack_sdk::types::ServiceType;
use openstack_sdk::OpenStack;
use serde_json::Value;
use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

/// Which cloud to use, and where its clouds.yaml is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudRef {
    pub name: Option<String>,
    pub clouds_yaml: Option<PathBuf>,
}

impl CloudRef {
    /// `--os-cloud` wins over `OS_CLOUD`, which wins over the inventory. None: no cloud
    /// is configured (neither a name nor `OS_AUTH_URL`), and the Nova checks are skipped.
    pub fn resolve(flag: Option<&str>, inventory: Option<&crate::inventory::NovaConf>) -> Option<CloudRef> {
        let clouds_yaml = inventory.and_then(|n| n.clouds_yaml.clone());
        let name = flag
            .map(str::to_string)
            .or_else(|| std::env::var("OS_CLOUD").ok().filter(|s| !s.is_empty()))
            .or_else(|| inventory.and_then(|n| n.cloud.clone()));
        if name.is_none() && std::env::var_os("OS_AUTH_URL").is_none() {
            return None;
        }
        Some(CloudRef { name, clouds_yaml })
    }

    pub fn describe(&self) -> String {
        match (&self.name, &self.clouds_yaml) {
            (Some(n), Some(p)) => format!("cloud {n} of {}", p.display()),
            (Some(n), None) => format!("cloud {n}"),
            (None, _) => "the OS_* environment".into(),
        }
    }
}

/// One authenticated session.
pub struct Cloud {
    os: OpenStack,
    pub what: String,
}

/// A Nova (or Glance) API call: the SDK does the rest (token, catalog, microversion
/// header from `min_version`, errors).
struct Call {
    method: http::Method,
    path: String,
    service: ServiceType,
    body: Option<Value>,
    microversion: Option<(u8, u8)>,
    params: Vec<(String, String)>,
}

impl RestEndpoint for Call {
    fn method(&self) -> http::Method {
        self.method.clone()
    }
    fn endpoint(&self) -> Cow<'static, str> {
        self.path.clone().into()
    }
    fn service_type(&self) -> ServiceType {
        self.service.clone()
    }
    fn parameters(&self) -> QueryParams<'_> {
        let mut p = QueryParams::default();
        for (k, v) in &self.params {
            p.push(k.as_str(), v.as_str());
        }
        p
    }
    fn body(&self) -> Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        Ok(match &self.body {
            Some(b) => Some(("application/json", serde_json::to_vec(b)?)),
            None => None,
        })
    }
    fn min_version(&self) -> Option<ApiVersion> {
        self.microversion.map(|(a, b)| ApiVersion::new(a, b))
    }
    fn api_version(&self) -> Option<ApiVersion> {
        None
    }
}

impl Cloud {
    pub fn connect(r: &CloudRef) -> Result<Cloud, String> {
        let config: CloudConfig = match &r.name {
            Some(name) => {
                let files = ConfigFile::new_with_user_specified_configs(r.clouds_yaml.as_ref(), None::<PathBuf>).map_err(|e| format!("reading clouds.yaml: {e}"))?;
                files
                    .get_cloud_config(name)
                    .map_err(|e| format!("cloud {name}: {e}"))?
                    .ok_or_else(|| format!("no cloud {name} in clouds.yaml{}", r.clouds_yaml.as_ref().map_or(String::new(), |p| format!(" ({})", p.display()))))?
            }
            None => CloudConfig::from_env().map_err(|e| format!("OS_* environment: {e}"))?,
        };
        let os = OpenStack::builder(&config)
            .disable_auth_cache(true)
            .http_timeout(Duration::from_secs(60))
            .http_connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("connecting to {}: {}", r.describe(), redact(&e.to_string())))?;
        Ok(Cloud { os, what: r.describe() })
    }

    fn call(&self, method: http::Method, service: ServiceType, path: &str, mv: Option<(u8, u8)>, body: Option<Value>, params: &[(&str, &str)]) -> Result<Value, String> {
        let c = Call { method: method.clone(), path: path.to_string(), service, body, microversion: mv, params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        let r: Result<Value, _> = c.query(&self.os);
        r.map_err(|e| format!("{method} {path}: {}", redact(&e.to_string())))
    }

    fn call_no_body(&self, method: http::Method, path: &str, mv: Option<(u8, u8)>, body: Option<Value>) -> Result<(), String> {
        let c = Call { method: method.clone(), path: path.to_string(), service: ServiceType::Compute, body, microversion: mv, params: Vec::new() };
        let r: Result<(), _> = ignore(c).query(&self.os);
        r.map_err(|e| format!("{method} {path}: {}", redact(&e.to_string())))
    }

    /// GET /os-services?binary=nova-compute
    pub fn compute_services(&self) -> Result<Value, String> {
        self.call(http::Method::GET, ServiceType::Compute, "os-services", Some((2, 11)), None, &[("binary", "nova-compute")])
    }

    /// GET /os-hypervisors/detail (2.1: hypervisor_type, hypervisor_version, service.host)
    pub fn hypervisors(&self) -> Result<Value, String> {
        self.call(http::Method::GET, ServiceType::Compute, "os-hypervisors/detail", Some((2, 1)), None, &[])
    }

    pub fn find_flavor(&self, name: &str) -> Result<Option<String>, String> {
        let v = self.call(http::Method::GET, ServiceType::Compute, "flavors/detail", Some((2, 1)), None, &[("is_public", "None")])?;
        Ok(v["flavors"].as_array().into_iter().flatten().find(|f| f["name"] == name).and_then(|f| f["id"].as_str().map(str::to_string)))
    }

    pub fn create_flavor(&self, name: &str, ram_mib: u64, vcpus: u64, disk_gb: u64) -> Result<String, String> {
        let body = serde_json::json!({"flavor": {"name": name, "ram": ram_mib, "vcpus": vcpus, "disk": disk_gb}});
        let v = self.call(http::Method::POST, ServiceType::Compute, "flavors", Some((2, 1)), Some(body), &[])?;
        v["flavor"]["id"].as_str().map(str::to_string).ok_or_else(|| "POST flavors: no id in the answer".into())
    }

    pub fn delete_flavor(&self, id: &str) -> Result<(), String> {
        self.call_no_body(http::Method::DELETE, &format!("flavors/{id}"), Some((2, 1)), None)
    }

    /// An active image named `name` in Glance.
    pub fn find_image(&self, name: &str) -> Result<Option<String>, String> {
        let v = self.call(http::Method::GET, ServiceType::Image, "v2/images", None, None, &[("name", name), ("status", "active")])?;
        Ok(v["images"].as_array().into_iter().flatten().next().and_then(|i| i["id"].as_str().map(str::to_string)))
    }

    /// Boots a server without network (2.37 `networks: "none"`) on `host` (2.74 `host`).
    pub fn create_server(&self, name: &str, image: &str, flavor: &str, host: &str) -> Result<String, String> {
        let body = serde_json::json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none", "host": host}});
        let v = self.call(http::Method::POST, ServiceType::Compute, "servers", Some((2, 74)), Some(body), &[])?;
        v["server"]["id"].as_str().map(str::to_string).ok_or_else(|| "POST servers: no id in the answer".into())
    }

    /// GET /servers/ID (admin: OS-EXT-SRV-ATTR:host, fault); None when it is gone.
    pub fn server(&self, id: &str) -> Result<Option<Value>, String> {
        match self.call(http::Method::GET, ServiceType::Compute, &format!("servers/{id}"), Some((2, 74)), None, &[]) {
            Ok(v) => Ok(Some(v["server"].clone())),
            Err(e) if e.contains("404") || e.to_lowercase().contains("not found") || e.contains("could not be found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `os-migrateLive` with block migration to `host` (2.30: the scheduler checks the host).
    pub fn live_migrate(&self, id: &str, host: &str) -> Result<(), String> {
        let body = serde_json::json!({"os-migrateLive": {"block_migration": true, "host": host}});
        self.call_no_body(http::Method::POST, &format!("servers/{id}/action"), Some((2, 30)), Some(body))
    }

    /// The server's migration records (GET /os-migrations?instance_uuid=, 2.59).
    pub fn migrations(&self, id: &str) -> Result<Value, String> {
        self.call(http::Method::GET, ServiceType::Compute, "os-migrations", Some((2, 59)), None, &[("instance_uuid", id)])
    }

    /// The server's actions with their events (the traceback of a failed one).
    pub fn instance_actions(&self, id: &str) -> Result<Vec<Value>, String> {
        let v = self.call(http::Method::GET, ServiceType::Compute, &format!("servers/{id}/os-instance-actions"), Some((2, 58)), None, &[])?;
        let mut out = Vec::new();
        for a in v["instanceActions"].as_array().into_iter().flatten() {
            if let Some(req) = a["request_id"].as_str() {
                out.push(self.call(http::Method::GET, ServiceType::Compute, &format!("servers/{id}/os-instance-actions/{req}"), Some((2, 58)), None, &[])?["instanceAction"].clone());
            }
        }
        Ok(out)
    }

    pub fn delete_server(&self, id: &str) -> Result<(), String> {
        self.call_no_body(http::Method::DELETE, &format!("servers/{id}"), Some((2, 1)), None)
    }
}

/// Errors from the SDK may quote the request; keep anything that looks like a token out.
fn redact(s: &str) -> String {
    static TOKEN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r#"(?i)(x-auth-token|x-subject-token|password|secret)("?\s*[:=]\s*"?)[^",\s}]+"#).unwrap());
    TOKEN.replace_all(s, "$1$2<redacted>").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_errors_are_redacted() {
        let e = r#"POST servers: {"password": "hunter2", "X-Auth-Token: gAAAAAB"}"#;
        let r = redact(e);
        assert!(!r.contains("hunter2") && !r.contains("gAAAAAB"), "{r}");
    }
}
