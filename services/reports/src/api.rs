//! The tonic adapter: decode the request into domain values, scope it to the caller, build
//! the report from the read model, render it.

use std::sync::Arc;

use samsyn_kit::caller::Caller;
use samsyn_kit::{ApiError, FieldViolations};
use samsyn_proto::reports::v1 as pb;
use tonic::{Request, Response, Status};

use crate::domain::table::{JsonReport, to_csv};
use crate::domain::{ReportKind, ReportSettings, Scope, Year, reports};
use crate::follow::Follower;
use crate::store::Store;

/// The reports service.
#[derive(Debug, Clone)]
pub struct ReportsApi {
    store: Store,
    settings: Arc<ReportSettings>,
    /// Keeps the read model following the feeds for as long as the service is served.
    _follower: Arc<Follower>,
}

impl ReportsApi {
    /// The service over `store`.
    pub fn new(store: Store, settings: ReportSettings, follower: Follower) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            _follower: Arc::new(follower),
        }
    }
}

fn kind(value: i32) -> Result<ReportKind, &'static str> {
    match pb::ReportKind::try_from(value) {
        Ok(pb::ReportKind::Recruitment) => Ok(ReportKind::Recruitment),
        Ok(pb::ReportKind::InterventionCoverage) => Ok(ReportKind::InterventionCoverage),
        Ok(pb::ReportKind::Board) => Ok(ReportKind::Board),
        Ok(pb::ReportKind::Fidelity) => Ok(ReportKind::Fidelity),
        Ok(pb::ReportKind::Unspecified) | Err(_) => Err("must name a report"),
    }
}

fn format(value: i32) -> Result<pb::ReportFormat, &'static str> {
    pb::ReportFormat::try_from(value).map_err(|_| "unknown format")
}

fn kind_code(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Recruitment => "recruitment",
        ReportKind::InterventionCoverage => "intervention_coverage",
        ReportKind::Board => "board",
        ReportKind::Fidelity => "fidelity",
    }
}

#[tonic::async_trait]
impl pb::reports_service_server::ReportsService for ReportsApi {
    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let report_kind = v.check("kind", kind(req.kind));
        let year = v.check("year", Year::parse(req.year));
        let wanted = v.check("format", format(req.format));
        v.finish()?;
        let (Some(report_kind), Some(year), Some(wanted)) = (report_kind, year, wanted) else {
            return Err(Status::invalid_argument("invalid request"));
        };
        // Without a caller the call comes from one of Samsyn's own components.
        let scope = match caller {
            None => Scope::Programme,
            Some(caller) => caller
                .organisation
                .as_deref()
                .and_then(|o| Scope::of(o, &self.settings))
                .ok_or(ApiError::PermissionDenied)?,
        };
        let facts = self.store.facts().await.map_err(|error| {
            tracing::error!(%error, "cannot read the reports read model");
            Status::from(ApiError::Unavailable)
        })?;
        let now = chrono::Utc::now();
        let table = reports::build(report_kind, &facts, year, &scope, &self.settings, now);
        let threshold = self.settings.suppression_threshold;
        let rows = table.rendered();
        let (document, media_type) = match wanted {
            pb::ReportFormat::Unspecified => (Vec::new(), String::new()),
            pb::ReportFormat::Csv => (
                to_csv(&table.columns, &rows).into_bytes(),
                "text/csv; charset=utf-8".to_owned(),
            ),
            pb::ReportFormat::Json => (
                serde_json::to_vec(&JsonReport {
                    kind: kind_code(report_kind),
                    year: year.get(),
                    scope: scope.label(),
                    suppression_threshold: threshold,
                    columns: &table.columns,
                    rows: &rows,
                    notes: &table.notes,
                })
                .map_err(|error| Status::from(ApiError::internal(error)))?,
                "application/json".to_owned(),
            ),
        };
        tracing::info!(
            report = kind_code(report_kind),
            year = year.get(),
            "report made"
        );
        Ok(Response::new(pb::Report {
            kind: req.kind,
            year: year.get(),
            scope: scope.label().to_owned(),
            columns: table.columns.clone(),
            rows: rows
                .into_iter()
                .map(|cells| pb::ReportRow { cells })
                .collect(),
            suppression_threshold: threshold,
            notes: table.notes.clone(),
            document,
            media_type,
        }))
    }
}
