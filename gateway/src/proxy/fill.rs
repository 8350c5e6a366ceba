//! Narrowed, paged lists filled with visible rows only.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use samsyn_proto::MethodAccess;
use tonic::{Code, Response, Status};

use super::error::GatewayError;
use super::forward::scrub;
use super::withhold::withhold;
use super::{Admitted, Call};
use crate::audit::RowAccess;
use crate::describe::DescribeError;
use crate::page_token::Cursor;

/// Rows in a filled page when the caller asks for none (the services' default).
pub(super) const DEFAULT_FILL_PAGE: usize = 50;
/// Most rows in a filled page (the services' maximum).
pub(super) const MAX_FILL_PAGE: usize = 500;
/// Rows of each service page a filled page reads (the services' maximum).
pub(super) const SERVICE_PAGE: u32 = 500;
/// Most service pages one filled page may read; the caller goes on with the next page.
pub(super) const MAX_FILL_FETCHES: usize = 400;

impl Call {
    /// A narrowed, paged list, filled with visible rows only: every page is full unless it is
    /// the last visible one, and a next-page token exists only when a visible row follows,
    /// so neither a page's length nor its token tells how many rows were withheld. The token
    /// is the gateway's own cursor (a service page and the rows of it already gone through),
    /// sealed to the caller and the RPC.
    pub(super) async fn unary_filled(
        &self,
        admitted: Admitted,
        access: &MethodAccess,
        limit: Duration,
    ) -> Result<Response<Bytes>, Status> {
        let gateway = &self.gateway;
        let principal = &admitted.admission.principal;
        let (size, mut cursor) = gateway
            .pages
            .request_cursor(&self.path, &principal.id, &admitted.message)
            .map_err(GatewayError::internal("opening the caller's page cursor"))?
            .unwrap_or_default();
        let size = match usize::try_from(size) {
            Ok(0) | Err(_) => DEFAULT_FILL_PAGE,
            Ok(n) => n.min(MAX_FILL_PAGE),
        };
        let started = tokio::time::Instant::now();
        let mut shown = Vec::new();
        let mut shown_rows: BTreeMap<String, bool> = BTreeMap::new();
        let mut decided: HashMap<String, Option<bool>> = HashMap::new();
        let mut template = None;
        let mut next = None;
        let mut fetches = 0;
        loop {
            fetches += 1;
            let message = gateway
                .pages
                // The service's largest pages, always the same size: a cursor's `skip`
                // counts rows of such a page.
                .request_at(
                    &self.path,
                    &admitted.message,
                    &cursor.service_token,
                    SERVICE_PAGE,
                )
                .map_err(GatewayError::internal("asking the service for a page"))?;
            let remaining = limit.saturating_sub(started.elapsed());
            let (result, _) = self
                .forward_unary(&admitted, Bytes::from(message), remaining)
                .await?;
            let body = match result {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    let status = scrub(&status);
                    self.audit_forwarded(admitted, Vec::new(), status.code())
                        .await?;
                    return Err(status);
                }
            };
            let service_next =
                gateway
                    .pages
                    .response_next(&self.path, &body)
                    .map_err(GatewayError::internal(
                        "reading a service page's next token",
                    ))?;
            let rows = gateway
                .describer
                .rows_of(&self.path, &body)
                .map_err(GatewayError::internal("reading a service page's rows"))?;
            for (index, (row, participant)) in rows.into_iter().enumerate().skip(cursor.skip) {
                let Some(participant) = participant else {
                    continue;
                };
                let visible = match decided.get(&participant) {
                    Some(visible) => *visible,
                    None => {
                        let verdict = gateway
                            .gate
                            .decide_row(principal, access, &participant)
                            .map_err(|e| Status::from(GatewayError::ViewUnavailable(e)))?;
                        let visible = verdict
                            .decision
                            .allowed
                            .then_some(verdict.decision.disclosure);
                        decided.insert(participant.clone(), visible);
                        visible
                    }
                };
                let Some(disclosure) = visible else { continue };
                if shown.len() == size {
                    // A visible row follows: the next page starts at it.
                    next = Some(Cursor {
                        service_token: cursor.service_token.clone(),
                        skip: index,
                    });
                    break;
                }
                shown.push(row);
                *shown_rows.entry(participant).or_default() |= disclosure;
            }
            template.get_or_insert(body);
            if next.is_some() || service_next.is_empty() {
                break;
            }
            cursor = Cursor {
                service_token: service_next,
                skip: 0,
            };
            if fetches >= MAX_FILL_FETCHES {
                // Bounded work per call: the caller goes on from here with the next page.
                next = Some(cursor);
                break;
            }
        }
        let body = template.unwrap_or_default();
        let body = gateway
            .describer
            .with_rows(&self.path, &body, shown)
            .and_then(|body| {
                gateway
                    .pages
                    .response_with(&self.path, &principal.id, &body, next.as_ref())
                    .map_err(|_| DescribeError::Malformed)
            })
            .map_err(GatewayError::internal("assembling a filled page"))?;
        let rows = shown_rows
            .into_iter()
            .map(|(participant_id, disclosure)| RowAccess {
                participant_id,
                disclosure,
            })
            .collect();
        let body = withhold(gateway, principal, &self.path, access, body.into())?;
        self.audit_forwarded(admitted, rows, Code::Ok).await?;
        Ok(Response::new(body))
    }
}
