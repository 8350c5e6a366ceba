//! Admission: who calls, about whom, and whether they may. Every door admits here: the
//! proxy's calls (and through them the FHIR view's and the web board's) by [`Call::admit`],
//! and the calls the gateway makes itself for a principal (the pushes to linked systems) by
//! [`Gateway::admit_as`]; both decide by [`Gateway::decide`] and are audited as an
//! [`Admission`].

use bytes::Bytes;
use tonic::metadata::MetadataMap;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Request, Status};
use tracing::Instrument;

use super::error::GatewayError;
use super::metadata::{consistency_token, emergency_reason, grpc_timeout};
use super::{Admitted, Call, Gateway, Refused, filled};
use crate::auth::Principal;
use crate::authenticate::Authenticated;
use crate::case_terms;
use crate::describe::{DescribeError, RequestedAct};
use crate::gate::Verdict;
use crate::policy::Action;
use samsyn_proto::MethodAccess;
use samsyn_proto::common::v1::DataCategory;

/// A call let through the door: who makes it, what it does, about whom, and the decision
/// that allowed it; the audit trail's events about the call are made from it.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Who makes the call.
    pub principal: Principal,
    /// The RPC, `/package.Service/Method`.
    pub rpc: String,
    /// What the call does to its data.
    pub action: Action,
    /// The data it touches.
    pub category: DataCategory,
    /// The participant the call names, if it names one.
    pub participant_id: Option<String>,
    /// The decision that let it through.
    pub verdict: Verdict,
    /// The emergency the caller declared, if any.
    pub emergency_reason: Option<String>,
    /// Ties a write's intent event to its outcome event.
    pub call_id: String,
}

impl Admission {
    /// `principal`'s call to `access` about `participant_id`, let through by `verdict`.
    pub(super) fn new(
        principal: Principal,
        access: &MethodAccess,
        participant_id: Option<String>,
        verdict: Verdict,
        emergency_reason: Option<String>,
    ) -> Self {
        Self {
            principal,
            rpc: access.path.clone(),
            action: Action::of(access),
            category: access.category(),
            participant_id,
            verdict,
            emergency_reason,
            call_id: uuid::Uuid::now_v7().to_string(),
        }
    }
}

impl Gateway {
    /// The one decision every door takes: `principal`'s call to `access`, about
    /// `participant_id` if it names one. Allowed or not, it is a verdict; `Err` only when the
    /// access view cannot vouch for its facts. Traced and counted by outcome only, never by
    /// who or about whom.
    pub(super) fn decide(
        &self,
        principal: &Principal,
        access: &MethodAccess,
        participant_id: Option<&str>,
        emergency_reason: bool,
        requested: &RequestedAct,
    ) -> Result<Verdict, GatewayError> {
        let decide = tracing::info_span!(
            "gateway.decide",
            decision.allowed = tracing::field::Empty,
            decision.disclosure = tracing::field::Empty,
            decision.emergency = tracing::field::Empty,
        );
        let verdict = decide
            .in_scope(|| {
                self.gate.decide_act(
                    principal,
                    access,
                    participant_id,
                    emergency_reason,
                    requested,
                )
            })
            .map_err(GatewayError::ViewUnavailable)?;
        decide.record("decision.allowed", verdict.decision.allowed);
        decide.record("decision.disclosure", verdict.decision.disclosure);
        decide.record("decision.emergency", verdict.decision.emergency);
        crate::metrics::decision(
            verdict.decision.allowed,
            Action::of(access),
            access.category(),
        );
        if verdict.decision.allowed && verdict.decision.emergency {
            crate::metrics::emergency_access(access.category());
        }
        Ok(verdict)
    }

    /// Admits a read the gateway makes itself for `principal` (a push to a linked system):
    /// decided exactly as `principal`'s own call to `rpc` about `participant_id` would be.
    /// A refusal is not audited: nobody asked, and nothing leaves; an admitted read's event
    /// is the caller's to record once what it read is on its way.
    pub(crate) fn admit_as(
        &self,
        principal: &Principal,
        rpc: &str,
        participant_id: &str,
    ) -> Result<Admission, GatewayError> {
        let (access, _) = self
            .describer
            .method_access(rpc)
            .ok_or(GatewayError::UnknownMethod)?;
        let verdict = self.decide(
            principal,
            access,
            Some(participant_id),
            false,
            &RequestedAct::default(),
        )?;
        if !verdict.decision.allowed {
            return Err(GatewayError::NotPermitted);
        }
        Ok(Admission::new(
            principal.clone(),
            access,
            Some(participant_id.to_owned()),
            verdict,
            None,
        ))
    }
}

impl Call {
    /// Authenticates, catches up with the caller's consistency token, describes and decides;
    /// every refusal is audited here.
    pub(super) async fn admit(&self, request: Request<Bytes>) -> Result<Admitted, Status> {
        let admitted = match self.authenticate(&request).await {
            Ok(authenticated) => {
                let request = self
                    .in_samsyn_terms(request, &authenticated.principal)
                    .await?;
                match self.catch_up(request.metadata()).await {
                    Ok(()) => self.try_admit(request, authenticated),
                    Err(status) => Err(Box::new(Refused {
                        principal: Some(authenticated.principal),
                        ..Refused::new(status)
                    })),
                }
            }
            Err(refused) => Err(refused),
        };
        match admitted {
            Ok(admitted) => Ok(admitted),
            Err(refused) => {
                let status = refused.status.clone();
                crate::metrics::refusal(status.code());
                self.audit_refusal(*refused).await?;
                Err(status)
            }
        }
    }

    /// A linked case system's push in its own terms, translated before it is decided (see
    /// [`crate::case_terms`]); anything else passes unchanged. A push that cannot be
    /// translated is refused and audited here.
    pub(super) async fn in_samsyn_terms(
        &self,
        request: Request<Bytes>,
        principal: &Principal,
    ) -> Result<Request<Bytes>, Status> {
        if self.path != case_terms::PUSH_DECISION || !case_terms::in_case_terms(request.get_ref()) {
            return Ok(request);
        }
        // Anyone but a case system linked for this call goes on unchanged, to be refused by
        // the usual admission (not permitted, or no participant id).
        if principal.kind != crate::auth::PrincipalKind::System
            || !self.gateway.gate.links().allows(&principal.id, &self.path)
        {
            return Ok(request);
        }
        match case_terms::translate(&self.gateway, principal, request.get_ref()).await {
            Ok(message) => {
                let (metadata, extensions, _) = request.into_parts();
                Ok(Request::from_parts(metadata, extensions, message))
            }
            Err(untranslated) => {
                let status = untranslated.status.clone();
                crate::metrics::refusal(status.code());
                self.audit_refusal(Refused {
                    principal: Some(principal.clone()),
                    participant_id: untranslated.participant_id,
                    ..Refused::new(untranslated.status)
                })
                .await?;
                Err(status)
            }
        }
    }

    /// Who is calling: an unknown method is refused before anyone is looked for.
    pub(super) async fn authenticate(
        &self,
        request: &Request<Bytes>,
    ) -> Result<Authenticated, Box<Refused>> {
        self.access()
            .map_err(|status| Box::new(Refused::new(status)))?;
        let peer_certs = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs);
        self.gateway
            .authenticator
            .authenticate(
                request.metadata(),
                peer_certs.as_ref().map(|c| c.as_slice()),
            )
            .instrument(tracing::info_span!("gateway.authenticate"))
            .await
            .map_err(|error| Box::new(Refused::new(GatewayError::Unauthenticated(error).into())))
    }

    pub(super) fn try_admit(
        &self,
        request: Request<Bytes>,
        authenticated: Authenticated,
    ) -> Result<Admitted, Box<Refused>> {
        let gateway = &self.gateway;
        let access = self
            .access()
            .map_err(|status| Box::new(Refused::new(status)))?;
        let Authenticated {
            principal,
            expires_at,
            session,
        } = authenticated;
        let refuse = |status: Status| Refused {
            principal: Some(principal.clone()),
            ..Refused::new(status)
        };
        let timeout = grpc_timeout(request.metadata());
        let emergency_reason =
            emergency_reason(request.metadata()).map_err(|status| Box::new(refuse(status)))?;
        let message = request.into_inner();
        let call = gateway
            .describer
            .describe(&self.path, &message)
            .map_err(|error| {
                Box::new(refuse(match error {
                    DescribeError::Malformed => samsyn_kit::error::ApiError::invalid(
                        "request",
                        "does not decode as the method's request message",
                    )
                    .into(),
                    DescribeError::NoParticipant(field) => samsyn_kit::error::ApiError::invalid(
                        field,
                        "required: the id of the participant the call is about, as a lower-case hyphenated UUID",
                    )
                    .into(),
                    DescribeError::UnknownMethod => GatewayError::UnknownMethod.into(),
                    DescribeError::Descriptors(error) => {
                        GatewayError::internal("describing a call")(error).into()
                    }
                }))
            })?;
        let participant_id = call.participant_id;
        let requested = call.act;
        let with_participant = |status: Status| Refused {
            participant_id: participant_id.clone(),
            emergency_reason: emergency_reason.clone(),
            ..refuse(status)
        };
        let verdict = gateway
            .decide(
                &principal,
                access,
                participant_id.as_deref(),
                emergency_reason.is_some(),
                &requested,
            )
            .map_err(|error| Box::new(with_participant(error.into())))?;
        if !verdict.decision.allowed {
            return Err(Box::new(Refused {
                verdict: Some(verdict),
                ..with_participant(GatewayError::NotPermitted.into())
            }));
        }
        // A narrowed, paged list keeps the caller's token: its cursor is the gateway's own
        // (see `unary_filled`); other paged calls get the service's token back.
        let opened = if filled(gateway, access, &self.path) {
            gateway
                .pages
                .request_cursor(&self.path, &principal.id, &message)
                .map(|_| None)
        } else {
            gateway
                .pages
                .open_request(&self.path, &principal.id, &message)
        };
        let message = match opened {
            Ok(Some(opened)) => Bytes::from(opened),
            Ok(None) => message,
            Err(_) => {
                return Err(Box::new(Refused {
                    verdict: Some(verdict),
                    ..with_participant(
                        samsyn_kit::error::ApiError::invalid(
                            "page.page_token",
                            "not a page token this caller was given for this call",
                        )
                        .into(),
                    )
                }));
            }
        };
        Ok(Admitted {
            admission: Admission::new(principal, access, participant_id, verdict, emergency_reason),
            expires_at,
            session,
            message,
            timeout,
        })
    }

    /// Waits (bounded) until this gateway's access view has applied the changes named by the
    /// caller's consistency token, which another replica handed out with a write: so "revoked,
    /// then the next call is refused" holds whichever replica the next call reaches.
    pub(super) async fn catch_up(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let positions = consistency_token(metadata)?;
        let gate = &self.gateway.gate;
        for (feed, sequence) in positions {
            if let Err(error) = gate
                .view()
                .wait_for(feed, sequence, gate.settings().write_settle_timeout())
                .await
            {
                let cause = format!("{}: {error}", feed.as_str());
                return Err(GatewayError::NotCaughtUp(cause).into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
