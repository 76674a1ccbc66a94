//! Command-line grammar.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Accountable face search: enrol, identify, verify, evaluate"
)]
pub struct Cli {
    /// TOML configuration file; `VIGIL_*` environment variables override it.
    #[arg(long, short, global = true, env = "VIGIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Who is acting, for the audit log (default: the OS user).
    #[arg(long = "as", global = true, env = "VIGIL_USER")]
    pub acting_as: Option<String>,
    /// Case reference recorded with biometric operations.
    #[arg(long = "case", global = true, env = "VIGIL_CASE")]
    pub case_ref: Option<String>,
    /// Why, recorded with biometric operations.
    #[arg(long, global = true, env = "VIGIL_REASON")]
    pub reason: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// List, install or verify the ONNX models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Enrol photos (files or folders) of one subject.
    Enroll(EnrollArgs),
    /// Find every face of a photo in the gallery.
    Identify(IdentifyArgs),
    /// Compare the main faces of two photos (1:1).
    Verify(VerifyArgs),
    /// List, show or delete enrolled subjects.
    #[command(subcommand)]
    Subjects(SubjectsCommand),
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Print the HTTP API's OpenAPI document (JSON), e.g. to generate a client offline.
    Openapi,
    /// Measure a recognizer's impostor/genuine score distributions on LFW and write its
    /// calibration table.
    Calibrate(CalibrateArgs),
    /// Evaluate the pipeline on the shared data.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Benchmarks, each measured side by side with its peer.
    #[command(subcommand)]
    Bench(vigil_bench::BenchCommand),
    /// Enrol LFW subjects and identify unseen photos of them (the README's main job).
    Demo(DemoArgs),
    /// Users of the API and their tokens.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The tamper-evident audit log: verify, export, publish the head; misuse alerts.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Open, list and close cases (searches and watchlist entries name one).
    #[command(subcommand)]
    Cases(CasesCommand),
    /// Retrospective search: where and when a face was seen (needs --case and --reason).
    Search(SearchArgs),
    /// Subject access report: everything held about one person, from a photo or a subject.
    AccessReport(AccessReportArgs),
    /// Keys for encryption at rest: generate one, reseal after adding one, show which keys
    /// the stored data needs.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check an evidence bundle offline: hashes, signature, audit entries.
    VerifyExport(crate::evidence::VerifyExportArgs),
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new key as one key-file line. Appending it to the key file makes it the active
    /// key: `vigil keys generate >> /etc/vigil/keys`, then `vigil keys reseal`.
    Generate,
    /// The rotation job: re-encrypt with the active key every blob sealed with an older key,
    /// and encrypt blobs stored before encryption was turned on. Safe to interrupt and rerun.
    Reseal,
    /// How many blobs each key sealed, and how many are plaintext, per column.
    Status,
    /// Print the public key evidence bundles are signed with, for recipients to pin.
    EvidencePublic,
}

#[derive(Subcommand)]
pub enum CasesCommand {
    /// Open a case owned by the acting user (--as).
    Open {
        reference: String,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        legal_basis: String,
        /// Days until the case expires.
        #[arg(long)]
        expires_days: u32,
        /// Login names of existing users who may act under the case besides its owner (stored
        /// by user id; an unknown name is refused); repeat for several.
        #[arg(long = "member")]
        members: Vec<String>,
        /// Days the sightings behind its alerts are kept after it ends (default 30).
        #[arg(long)]
        evidence_retention_days: Option<u32>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Close {
        reference: String,
    },
    /// Write the case's evidence bundle, signed with the server's key (needs --reason).
    Export(crate::evidence::ExportArgs),
}

#[derive(Args)]
pub struct SearchArgs {
    pub photo: PathBuf,
    /// Only these cameras; repeat for several.
    #[arg(long = "camera")]
    pub cameras: Vec<String>,
    /// Unix milliseconds.
    #[arg(long)]
    pub from_ms: Option<i64>,
    #[arg(long)]
    pub to_ms: Option<i64>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long)]
    pub false_match_rate: Option<f64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct AccessReportArgs {
    /// A photo of the person...
    #[arg(long, conflicts_with = "subject", required_unless_present = "subject")]
    pub photo: Option<PathBuf>,
    /// ...or an enrolled subject (id or name).
    #[arg(long)]
    pub subject: Option<String>,
    /// Write the report here (`.html` for the readable page, otherwise JSON); default: JSON on
    /// standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub false_match_rate: Option<f64>,
    /// Skip comparing stored search probes with the person.
    #[arg(long)]
    pub no_probe_check: bool,
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Add {
        name: String,
        /// admin, operator, reviewer, investigator or auditor; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read a login password (at least 12 characters) from the first line of stdin;
        /// without it the user can only use API tokens.
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    /// Issue an API token; the secret is printed once on stdout and only its hash is kept.
    Token {
        name: String,
        #[arg(long = "name", default_value = "cli")]
        token_name: String,
        /// Lifetime in days (default: until revoked).
        #[arg(long)]
        ttl_days: Option<u64>,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the whole chain: edited, deleted, inserted or reordered entries, and a tail cut
    /// below a published head.
    Verify {
        /// File of published heads (default: data_dir/audit-heads.jsonl).
        #[arg(long)]
        anchors: Option<PathBuf>,
    },
    /// Write the log as JSON Lines, ending with the head, for offline verification.
    Export {
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// First sequence number to export.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Append the current head to data_dir/audit-heads.jsonl and print it (publish it
    /// elsewhere too: a truncated log is detected against any published head).
    Head,
    /// Per-user search activity today against each user's norm, and the misuse alerts.
    Misuse {
        /// Scan the log now and raise alerts (as `vigil serve` does periodically).
        #[arg(long)]
        scan: bool,
        /// Acknowledge this alert (with --note).
        #[arg(long, requires = "note")]
        acknowledge: Option<i64>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Every known model, its licence and whether it is installed.
    List,
    /// Install models: from the official upstream URLs (sha256-checked), or from a local folder.
    Fetch {
        /// Model names (default: all face models).
        names: Vec<String>,
        /// Install from this folder instead of downloading (files as laid out in the manifest).
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Check the sha256 of every installed model.
    Verify,
}

#[derive(Args)]
pub struct EnrollArgs {
    /// Subject name; created when new, extended when it exists.
    #[arg(long)]
    pub subject: String,
    #[arg(long)]
    pub notes: Option<String>,
    /// Image files or folders (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct IdentifyArgs {
    pub photo: PathBuf,
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Threshold as a false-match rate (default from the configuration).
    #[arg(long)]
    pub false_match_rate: Option<f64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum SubjectsCommand {
    List {
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// A subject (by id or name) and its templates.
    Show {
        subject: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a subject (by id or name) and all its templates.
    Delete { subject: String },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to bind (overrides the configuration).
    #[arg(long)]
    pub bind: Option<String>,
}

#[derive(Args)]
pub struct CalibrateArgs {
    /// Recognizer to calibrate (default: the configured one).
    #[arg(long)]
    pub model: Option<String>,
    /// LFW folder (default: ../shared/data/lfw relative to the repository).
    #[arg(long)]
    pub lfw: Option<PathBuf>,
    /// Where to write the table (default: calibration/<model>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Use only the first N identities (quick runs).
    #[arg(long)]
    pub identities: Option<usize>,
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// LFW View-2 10-fold verification, compared pair by pair with the reference scores.
    Lfw {
        #[arg(long)]
        lfw: Option<PathBuf>,
        /// Only the first N matched and N mismatched pairs of each fold (quick runs).
        #[arg(long)]
        pairs_per_fold: Option<usize>,
        /// Write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Exit with failure when a recognizer misses the reference tolerance.
        #[arg(long)]
        check: bool,
    },
    /// LFW open-set identification: FNIR at FPIR 0.01 / 0.001 and rank-1, with and without
    /// the quality gate.
    LfwOpenset {
        #[arg(long)]
        lfw: Option<PathBuf>,
        #[arg(long)]
        identities: Option<usize>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Detection on the group photos against the reference detections.
    Detect {
        #[arg(long)]
        photos: Option<PathBuf>,
        /// Detectors to evaluate (default: all).
        #[arg(long)]
        detector: Vec<String>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct DemoArgs {
    /// LFW folder (default: ../shared/data/lfw relative to the repository).
    #[arg(long)]
    pub lfw: Option<PathBuf>,
    /// How many LFW identities to enrol (those with the most photos).
    #[arg(long, default_value_t = 20)]
    pub subjects: usize,
    /// Photos enrolled per subject; the rest are used as unseen probes.
    #[arg(long, default_value_t = 3)]
    pub photos_per_subject: usize,
    /// Unseen probes identified per subject.
    #[arg(long, default_value_t = 2)]
    pub probes_per_subject: usize,
}
