//! The tonic adapter: decode the request into domain values, scope it to the caller, build
//! the report from the read model, render it.

use std::sync::Arc;

use samsyn_kit::caller::Caller;
use samsyn_kit::{ApiError, FieldViolations};
use samsyn_proto::reports::v1 as pb;
use tonic::{Request, Response, Status};

use crate::domain::repository::{ExportRecord, ReadModel, ReadModelError};
use crate::domain::table::{JsonReport, to_csv};
use crate::domain::{ReportKind, ReportSettings, Scope, Year, reports, research};
use crate::follow::Follower;

/// The reports service.
#[derive(Debug, Clone)]
pub struct ReportsApi<R> {
    store: R,
    settings: Arc<ReportSettings>,
    /// One export at a time: an allocation drawn by one is the one every later export shows.
    exporting: Arc<tokio::sync::Mutex<()>>,
    /// Keeps the read model following the feeds for as long as the service is served.
    _follower: Arc<Follower>,
}

impl<R: ReadModel> ReportsApi<R> {
    /// The service over a read model (the store, in production).
    pub fn new(store: R, settings: ReportSettings, follower: Follower) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            exporting: Arc::new(tokio::sync::Mutex::new(())),
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
        Ok(pb::ReportKind::Consultation) => Ok(ReportKind::Consultation),
        Ok(pb::ReportKind::SipKollen) => Ok(ReportKind::SipKollen),
        Ok(pb::ReportKind::BoardLevels) => Ok(ReportKind::BoardLevels),
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
        ReportKind::Consultation => "consultation",
        ReportKind::SipKollen => "sip_kollen",
        ReportKind::BoardLevels => "board_levels",
    }
}

fn unavailable(error: ReadModelError) -> Status {
    tracing::error!(%error, "cannot use the reports read model");
    Status::from(ApiError::Unavailable)
}

/// The longest study id (as the consent service allows).
const MAX_STUDY_ID: usize = 64;

#[tonic::async_trait]
impl<R: ReadModel> pb::reports_service_server::ReportsService for ReportsApi<R> {
    async fn export_research_data(
        &self,
        request: Request<pb::ExportResearchDataRequest>,
    ) -> Result<Response<pb::ResearchExport>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        if req.study_id.is_empty() || req.study_id.chars().count() > MAX_STUDY_ID {
            return Err(ApiError::invalid("study_id", "must be 1 to 64 characters").into());
        }
        let Some(study) = self.settings.studies.iter().find(|s| s.id == req.study_id) else {
            return Err(ApiError::invalid("study_id", "no such study is configured").into());
        };
        // The whole programme's data owner exports; a municipality does not.
        let (requested_by, organisation) = match &caller {
            None => (String::new(), String::new()),
            Some(caller) => {
                let organisation = caller.organisation.clone().unwrap_or_default();
                if Scope::of(&organisation, &self.settings) != Some(Scope::Programme) {
                    return Err(ApiError::PermissionDenied.into());
                }
                (caller.id.clone(), organisation)
            }
        };
        let _one_at_a_time = self.exporting.lock().await;
        let facts = self.store.facts().await.map_err(unavailable)?;
        let allocations = self
            .store
            .allocations(&study.id)
            .await
            .map_err(unavailable)?;
        let now = chrono::Utc::now();
        let random = ring::rand::SystemRandom::new();
        let mut failed = false;
        let export = research::export(&facts, study, &allocations, now, |arms| {
            let mut byte = [0u8; 4];
            if ring::rand::SecureRandom::fill(&random, &mut byte).is_err() {
                failed = true;
            }
            usize::try_from(u32::from_le_bytes(byte)).unwrap_or(0) % arms.max(1)
        });
        if failed {
            return Err(ApiError::Unavailable.into());
        }
        let row_count = u64::try_from(export.rows.len()).unwrap_or(u64::MAX);
        self.store
            .record_export(
                ExportRecord {
                    study_id: study.id.clone(),
                    row_count,
                    at: now,
                    requested_by,
                    organisation,
                },
                export.new_allocations,
            )
            .await
            .map_err(unavailable)?;
        tracing::info!(study_id = %study.id, row_count, "research data exported");
        let columns: Vec<String> = research::DICTIONARY
            .iter()
            .map(|(c, _, _)| (*c).to_owned())
            .collect();
        let dictionary: Vec<Vec<String>> = research::DICTIONARY
            .iter()
            .map(|(c, t, m)| vec![(*c).to_owned(), (*t).to_owned(), (*m).to_owned()])
            .collect();
        let mut response = Response::new(pb::ResearchExport {
            study_id: study.id.clone(),
            row_count: u32::try_from(row_count).unwrap_or(u32::MAX),
            document: to_csv(&columns, &export.rows).into_bytes(),
            dictionary: to_csv(
                &["column".to_owned(), "type".to_owned(), "meaning".to_owned()],
                &dictionary,
            )
            .into_bytes(),
            allocation_method: research::ALLOCATION_METHOD.to_owned(),
            date_precision: match study.date_precision {
                research::DatePrecision::Month => "month",
                research::DatePrecision::Quarter => "quarter",
                research::DatePrecision::Year => "year",
            }
            .to_owned(),
        });
        // The gateway records these on the call's audit event; the caller never sees them.
        let metadata = response.metadata_mut();
        if let Ok(value) = study.id.parse() {
            metadata.insert(samsyn_kit::export::STUDY_HEADER, value);
        }
        metadata.insert(samsyn_kit::export::ROW_COUNT_HEADER, row_count.into());
        Ok(response)
    }

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
        let facts = self.store.facts().await.map_err(unavailable)?;
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
