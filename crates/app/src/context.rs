//! Start-up: configuration, paths, and building the service from them.

use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_base::config::VigilConfig;
use vigil_base::CalibrationTable;
use vigil_infer::{AnalyzerSettings, DecodeLimits, FaceAnalyzer};
use vigil_pipeline::FaceService;
use vigil_store::{FaceStore, SqliteStore};

pub struct Context {
    pub config: VigilConfig,
    /// Who acts, for the audit log.
    pub actor: String,
    pub case_ref: Option<String>,
    pub reason: Option<String>,
}

impl Context {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let config = VigilConfig::load(path, std::env::vars())
            .with_context(|| "loading the configuration")?;
        Ok(Self {
            config,
            actor: std::env::var("USER").unwrap_or_else(|_| "local".into()),
            case_ref: None,
            reason: None,
        })
    }

    /// The audit entry of a command-line operation, for a store call that writes it in the
    /// same transaction as its change.
    pub fn audit_entry(
        &self,
        action: vigil_audit::AuditAction,
        target: (&str, &str),
        request: serde_json::Value,
    ) -> vigil_audit::NewAuditEntry {
        vigil_audit::NewAuditEntry {
            actor: vigil_audit::Actor {
                user_id: None,
                user_name: self.actor.clone(),
            },
            action,
            target: vigil_audit::Target {
                kind: target.0.to_string(),
                id: target.1.to_string(),
            },
            case_ref: self.case_ref.clone(),
            reason: self.reason.clone().unwrap_or_else(|| "command line".into()),
            request,
            probe_image: None,
            outcome: vigil_audit::Outcome::success(""),
        }
    }

    /// Records a command-line operation in the audit log. The command line works on the
    /// database directly (its user holds the machine), so its entries name `--as` and carry
    /// `--case`/`--reason` when given.
    pub fn audit(
        &self,
        action: vigil_audit::AuditAction,
        target: (&str, &str),
        request: serde_json::Value,
        probe: Option<Vec<u8>>,
    ) -> anyhow::Result<()> {
        let entry = vigil_audit::NewAuditEntry {
            probe_image: probe,
            ..self.audit_entry(action, target, request)
        };
        self.open_sqlite()?
            .audit(&entry)
            .context("writing the audit entry")?;
        Ok(())
    }

    /// The API's rules, on the command line: `--as` names an enabled user holding
    /// `permission`; a case-bound operation also needs `--reason` and a `--case` that is open
    /// and admits the user. A refused case-bound attempt is logged like the API's.
    pub fn authorize(
        &self,
        permission: vigil_auth::Permission,
        case_bound: bool,
    ) -> anyhow::Result<()> {
        let store = self.open_sqlite()?;
        let directory = vigil_auth::UserDirectory::new(vigil_auth::AuthOptions::default())?;
        let principal = store
            .with_connection(|connection| directory.local_principal(connection, &self.actor))
            .with_context(|| {
                format!(
                    "acting as {:?}: name an existing, enabled user with --as (see `vigil users add`)",
                    self.actor
                )
            })?;
        if !principal.allows(permission) {
            bail!(
                "user {} may not do this: their roles do not grant {permission:?}",
                self.actor
            );
        }
        if !case_bound {
            return Ok(());
        }
        let refuse = |code: &str, message: String| -> anyhow::Result<()> {
            store
                .audit(&vigil_audit::NewAuditEntry {
                    actor: vigil_audit::Actor {
                        user_id: Some(principal.user_id.0.to_string()),
                        user_name: self.actor.clone(),
                    },
                    action: permission_action(permission),
                    target: vigil_audit::Target {
                        kind: "case".into(),
                        id: self.case_ref.clone().unwrap_or_default(),
                    },
                    case_ref: self.case_ref.clone(),
                    reason: self.reason.clone().unwrap_or_default(),
                    request: serde_json::json!({ "command_line": true }),
                    probe_image: None,
                    outcome: vigil_audit::Outcome::refused(code),
                })
                .context("writing the audit entry")?;
            bail!("{message}")
        };
        let (Some(reference), Some(_)) = (&self.case_ref, &self.reason) else {
            return refuse(
                "case_required",
                "a search names its case and reason: --case REF --reason TEXT".into(),
            );
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match store.case(reference)? {
            Some(case) if case.is_open(now) => {
                if case.admits(&self.actor) {
                    Ok(())
                } else {
                    refuse(
                        "not_in_case",
                        format!(
                            "{} is neither owner nor member of case {reference}",
                            self.actor
                        ),
                    )
                }
            }
            _ => refuse(
                "case_not_open",
                format!("case {reference} does not exist, is closed or has expired"),
            ),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.config.data_dir.join("vigil.db")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.config.data_dir.join("cache")
    }

    pub fn open_store(&self) -> anyhow::Result<Arc<dyn FaceStore>> {
        Ok(self.open_sqlite()?)
    }

    /// The embedded database, which serves both the gallery and the video side, with the
    /// configured keys for encryption at rest (if any).
    pub fn open_sqlite(&self) -> anyhow::Result<Arc<SqliteStore>> {
        let path = self.database_path();
        let store = SqliteStore::open_sealed(&path, self.sealer()?)
            .with_context(|| format!("opening the database {}", path.display()))?;
        Ok(Arc::new(store))
    }

    /// The keys for encryption at rest: `encryption.key_file`, else `$VIGIL_SEAL_KEYS`, else
    /// none (docs/design/011).
    pub fn sealer(&self) -> anyhow::Result<Option<vigil_seal::Sealer>> {
        vigil_seal::Sealer::load(self.config.encryption.key_file.as_deref())
            .context("loading the keys for encryption at rest")
    }

    /// Published audit-log heads (JSON Lines), checked by `vigil audit verify`.
    pub fn audit_anchors_path(&self) -> PathBuf {
        self.config.data_dir.join("audit-heads.jsonl")
    }

    /// Where recordings go: `video.recordings_dir`, relative to `data_dir` unless absolute.
    pub fn recordings_dir(&self) -> PathBuf {
        self.config.data_dir.join(&self.config.video.recordings_dir)
    }

    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_pixels: self.config.server.max_image_pixels,
        }
    }

    /// An analyzer with the configured detector and the given (or configured) recognizer.
    pub fn analyzer(&self, recognizer: Option<&str>) -> anyhow::Result<FaceAnalyzer> {
        let mut config = self.config.clone();
        if let Some(recognizer) = recognizer {
            config.pipeline.recognizer = recognizer.to_string();
        }
        self.analyzer_for(&config)
    }

    /// One analyzer per worker (`workers`: one per core by default), for work that runs
    /// photos side by side (evaluations, calibration).
    pub fn analyzers_for(&self, config: &VigilConfig) -> anyhow::Result<Vec<FaceAnalyzer>> {
        (0..config.resolved_workers(cores()))
            .map(|_| self.analyzer_for(config))
            .collect()
    }

    pub fn analyzer_for(&self, config: &VigilConfig) -> anyhow::Result<FaceAnalyzer> {
        let mut config = config.clone();
        config.threads = config.resolved_threads(cores());
        if !config.models_dir.is_dir() {
            bail!(
                "models folder {} does not exist: run `vigil models fetch` (or `vigil models fetch --from DIR`)",
                config.models_dir.display()
            );
        }
        let settings = AnalyzerSettings::from_config(&config);
        FaceAnalyzer::new(settings).with_context(|| {
            format!(
                "loading models {} + {} from {}",
                config.pipeline.detector,
                config.pipeline.recognizer,
                config.models_dir.display()
            )
        })
    }

    pub fn calibration(&self, model: &str) -> anyhow::Result<CalibrationTable> {
        vigil_pipeline::calibrate::builtin_table(model).with_context(|| {
            format!("no calibration table for recognizer {model}: run `vigil calibrate --model {model}`")
        })
    }

    /// The service, with `workers` analyzers for concurrent requests.
    pub fn service(&self) -> anyhow::Result<FaceService> {
        self.service_on(self.open_store()?)
    }

    /// As `service`, over an already opened store.
    pub fn service_on(&self, store: Arc<dyn FaceStore>) -> anyhow::Result<FaceService> {
        let config = self.config.clone();
        let workers = config.resolved_workers(cores());
        let analyzers = (0..workers)
            .map(|_| self.analyzer_for(&config).map(Arc::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let calibration = self.calibration(&config.pipeline.recognizer)?;
        Ok(FaceService::with_analyzers(
            analyzers,
            store,
            calibration,
            self.config.matching.clone(),
            self.decode_limits(),
        )?)
    }
}

/// The audit action a refused case-bound command is logged under.
fn permission_action(permission: vigil_auth::Permission) -> vigil_audit::AuditAction {
    match permission {
        vigil_auth::Permission::Verify => vigil_audit::AuditAction::Verify,
        vigil_auth::Permission::Identify => vigil_audit::AuditAction::Identify,
        _ => vigil_audit::AuditAction::Search,
    }
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The repository root: the nearest folder above the working directory (or the executable)
/// holding the workspace's Cargo.toml.
pub fn repository_root() -> Option<PathBuf> {
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    for start in starts.into_iter().flatten() {
        for folder in start.ancestors() {
            let manifest = folder.join("Cargo.toml");
            if manifest.is_file() && folder.join("crates").is_dir() {
                return Some(folder.to_path_buf());
            }
        }
    }
    None
}

/// `../shared` next to the repository (models and data for tests and the demo), or
/// `VIGIL_SHARED_DIR` when set.
pub fn shared_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("VIGIL_SHARED_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let root = repository_root().context("cannot find the repository root")?;
    let shared = root.join("..").join("shared");
    if !shared.is_dir() {
        bail!(
            "no shared data folder at {} (set VIGIL_SHARED_DIR)",
            shared.display()
        );
    }
    Ok(shared)
}

pub fn lfw_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(path) => Ok(path.to_path_buf()),
        None => Ok(shared_dir()?.join("data").join("lfw")),
    }
}
