//! Every annotated RPC, read from the descriptor set, through the real gateway: no
//! credentials and an expired token are unauthenticated; a stranger (staff of another
//! organisation, on no care team) is refused every call that names a participant, alike for
//! a real and a made-up one, and learns nothing about the participant from any other call.
//! A new RPC is covered without editing this file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value,
};
use samsyn_gateway::auth::{Claims, DevIssuer, Principal};
use samsyn_gateway::describe::CallDescriber;
use samsyn_gateway::proxy::RawCodec;
use samsyn_proto::MethodAccess;
use samsyn_proto::common::v1::Action;
use support::*;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;

const CASE_MANAGER: &str = "SE2321000255-cm01";
const COORDINATOR: &str = "hbg-soc-7";
/// Stockholm: an organisation outside the programme's care of this participant.
const STOCKHOLM: &str = "0180";
const STRANGER: &str = "0180-cm99";
const NAME: &str = "Örjan Åkesson";
/// Longest wait for a call (or a stream's first message).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What came back from one call.
#[derive(Debug)]
enum Outcome {
    /// The response (a stream's first message; empty for a stream that ended at once).
    Answer(Bytes),
    /// A stream that opened and sent nothing within the timeout.
    Silent,
    /// A status other than OK.
    Status(tonic::Status),
}

impl Outcome {
    fn code(&self) -> Code {
        match self {
            Self::Answer(_) | Self::Silent => Code::Ok,
            Self::Status(status) => status.code(),
        }
    }

    /// Every byte the caller was given: the response, or the status message and details.
    fn revealed(&self) -> Vec<u8> {
        match self {
            Self::Answer(bytes) => bytes.to_vec(),
            Self::Silent => Vec::new(),
            Self::Status(status) => [status.message().as_bytes(), status.details()].concat(),
        }
    }
}

/// One annotated RPC as the test needs it.
struct Rpc<'a> {
    path: &'a str,
    access: &'a MethodAccess,
    streaming: bool,
    input: MessageDescriptor,
    output: MessageDescriptor,
}

impl Rpc<'_> {
    /// The request: empty but for the participant the annotation points at, if any.
    fn request(&self, participant: &str) -> Bytes {
        let mut message = DynamicMessage::new(self.input.clone());
        if !self.access.participant_field.is_empty() {
            set_participant(&mut message, &self.access.participant_field, participant);
        }
        Bytes::from(message.encode_to_vec())
    }

    fn names_participant(&self) -> bool {
        !self.access.participant_field.is_empty()
    }
}

/// Sets the participant id at a dotted field path: a string field or a `ParticipantId`.
fn set_participant(message: &mut DynamicMessage, dotted: &str, id: &str) {
    let (head, rest) = match dotted.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (dotted, None),
    };
    let field = message
        .descriptor()
        .get_field_by_name(head)
        .unwrap_or_else(|| panic!("annotated field {dotted} missing"));
    match rest {
        Some(rest) => match message.get_field_mut(&field) {
            Value::Message(inner) => set_participant(inner, rest, id),
            other => panic!("{head} of {dotted} is not a message: {other:?}"),
        },
        None => match field.kind() {
            Kind::String => message.set_field(&field, Value::String(id.to_owned())),
            Kind::Message(descriptor) => {
                let mut participant = DynamicMessage::new(descriptor);
                participant.set_field_by_name("value", Value::String(id.to_owned()));
                message.set_field(&field, Value::Message(participant));
            }
            kind => panic!("participant field {dotted} is a {kind:?}"),
        },
    }
}

/// Calls `rpc` through the gateway with `credentials`, asking about `participant`.
async fn call(
    stack: &Stack,
    rpc: &Rpc<'_>,
    credentials: Credentials,
    participant: &str,
) -> Outcome {
    let mut grpc = tonic::client::Grpc::new(InterceptedService::new(stack.channel(), credentials));
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_str(rpc.path).unwrap();
    let mut request = tonic::Request::new(rpc.request(participant));
    request.set_timeout(CALL_TIMEOUT);
    let outcome = async {
        if rpc.streaming {
            match grpc.server_streaming(request, path, RawCodec).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    match tokio::time::timeout(CALL_TIMEOUT, stream.message()).await {
                        Ok(Ok(message)) => Outcome::Answer(message.unwrap_or_default()),
                        Ok(Err(status)) => Outcome::Status(status),
                        Err(_) => Outcome::Silent,
                    }
                }
                Err(status) => Outcome::Status(status),
            }
        } else {
            match grpc.unary(request, path, RawCodec).await {
                Ok(response) => Outcome::Answer(response.into_inner()),
                Err(status) => Outcome::Status(status),
            }
        }
    };
    tokio::time::timeout(CALL_TIMEOUT * 2, outcome)
        .await
        .unwrap_or_else(|_| panic!("{} did not answer", rpc.path))
}

/// A token for `principal` signed with the development key that expired an hour ago (well
/// past the verifier's leeway).
fn expired_token(stack: &Stack, principal: &Principal) -> String {
    let issuer = DevIssuer::at(stack.certs());
    let pem = std::fs::read(issuer.private_key()).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims {
        iss: DevIssuer::ISSUER.into(),
        aud: DevIssuer::AUDIENCE.into(),
        sub: principal.id.clone(),
        exp: now - 3600,
        iat: Some(now - 4200),
        nbf: None,
        kind: principal.kind,
        org: principal.organisation.clone(),
        unit: principal.unit.clone(),
        roles: principal.roles.clone(),
        teams: principal.teams.clone(),
        purpose: principal.purpose.clone(),
        jti: None,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(DevIssuer::KEY_ID.into());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Every annotated RPC of Samsyn's descriptor set, sorted by path.
fn every_rpc(describer: &CallDescriber) -> Vec<Rpc<'_>> {
    let pool = DescriptorPool::decode(samsyn_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs: Vec<Rpc<'_>> = describer
        .paths()
        .map(|path| {
            let (access, streaming) = describer.method_access(path).unwrap();
            let (service, method) = path[1..].split_once('/').unwrap();
            let method = pool
                .get_service_by_name(service)
                .and_then(|s| s.methods().find(|m| m.name() == method))
                .unwrap_or_else(|| panic!("{path} not in the descriptor set"));
            assert_eq!(method.is_server_streaming(), streaming, "{path}");
            Rpc {
                path,
                access,
                streaming,
                input: method.input(),
                output: method.output(),
            }
        })
        .collect();
    rpcs.sort_by_key(|rpc| rpc.path);
    assert!(rpcs.len() > 40, "only {} annotated RPCs", rpcs.len());

    rpcs
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_refuses_the_unauthenticated_and_tells_a_stranger_nothing() {
    let describer = CallDescriber::samsyn().unwrap();
    let rpcs = every_rpc(&describer);

    let stack = Stack::start().await;
    let participant = enrolled(
        &stack,
        &pin("19790321", "482"),
        NAME,
        Team {
            region: &[CASE_MANAGER],
            municipal: &[COORDINATOR],
        },
    )
    .await;
    stack.settle().await;
    let made_up = uuid::Uuid::now_v7().to_string();
    let member = staff(CASE_MANAGER, REGION, &["case_manager"]);
    let member_token = stack.token(&member);
    let expired = expired_token(&stack, &member);
    let stranger = stack.token(&staff(STRANGER, STOCKHOLM, &["case_manager"]));

    let mut failures = Vec::new();
    let mut fail = |rpc: &Rpc<'_>, case: &str, outcome: &dyn std::fmt::Debug| {
        failures.push(format!("{} [{case}]: {outcome:?}", rpc.path));
    };
    // Evidence that the participant is real and visible to its care team, so a refusal of
    // the stranger is not the gateway failing to know them.
    let mut member_read_named = 0;
    let mut member_listed = 0;
    let mut stranger_forwarded = 0;

    for rpc in &rpcs {
        // 1. No credentials, and 2. an expired token of someone who may otherwise call.
        for (case, credentials) in [
            ("no credentials", Credentials::none()),
            ("expired token", Credentials::bearer(&expired)),
        ] {
            let outcome = call(&stack, rpc, credentials, &participant).await;
            if outcome.code() != Code::Unauthenticated {
                fail(rpc, case, &outcome);
            }
        }

        // 3. A stranger.
        let outcome = call(&stack, rpc, Credentials::bearer(&stranger), &participant).await;
        let revealed = outcome.revealed();
        if contains(&revealed, participant.as_bytes()) || contains(&revealed, NAME.as_bytes()) {
            fail(rpc, "stranger: the participant in the reply", &outcome);
        }
        if rpc.names_participant() || rpc.access.internal_only {
            // Refused, and refused alike whether the participant exists or not.
            if outcome.code() != Code::PermissionDenied {
                fail(rpc, "stranger", &outcome);
            }
            if rpc.names_participant() {
                let nobody = call(&stack, rpc, Credentials::bearer(&stranger), &made_up).await;
                let same = match (&outcome, &nobody) {
                    (Outcome::Status(real), Outcome::Status(nobody)) => {
                        real.code() == nobody.code()
                            && real.message() == nobody.message()
                            && real.details() == nobody.details()
                    }
                    _ => false,
                };
                if !same {
                    fail(
                        rpc,
                        "stranger: real and made-up participant differ",
                        &(&outcome, &nobody),
                    );
                }
            }
        } else {
            // About nobody: refused, or an answer with no row about the participant.
            if outcome.code() != Code::PermissionDenied {
                stranger_forwarded += 1;
            }
            if let (true, Outcome::Answer(bytes)) = (rpc.access.narrowed_list, &outcome) {
                match DynamicMessage::decode(rpc.output.clone(), bytes.clone()) {
                    Ok(_) => {
                        let rows = describer.row_participants(rpc.path, bytes).unwrap();
                        if rows.iter().flatten().any(|row| *row == participant) {
                            fail(rpc, "stranger: a row about the participant", &rows);
                        }
                    }
                    Err(error) => fail(rpc, "stranger: the answer does not decode", &error),
                }
            }
        }

        // The control, reads only (writes would change the participant): the care team.
        if rpc.access.action() == Action::Read && !rpc.access.internal_only {
            let outcome = call(
                &stack,
                rpc,
                Credentials::bearer(&member_token),
                &participant,
            )
            .await;
            if rpc.names_participant() && outcome.code() != Code::PermissionDenied {
                member_read_named += 1;
            }
            if rpc.access.narrowed_list
                && let Outcome::Answer(bytes) = &outcome
                && describer
                    .row_participants(rpc.path, bytes)
                    .unwrap()
                    .iter()
                    .flatten()
                    .any(|row| *row == participant)
            {
                member_listed += 1;
            }
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        member_read_named > 0,
        "the care team was refused every read that names the participant"
    );
    assert!(
        member_listed > 0,
        "no list showed the participant to its care team, so no narrowing was tested"
    );
    println!(
        "{} RPCs; stranger forwarded on {stranger_forwarded} about nobody; care team read \
         {member_read_named} named, listed in {member_listed}",
        rpcs.len()
    );
    stack.stop().await;
}

/// Bytes that are not a request message: garbage, invalid UTF-8 in a string, a truncated
/// field, a 2³¹ length prefix, 10,000-deep nesting.
const BAD_BYTES: [(&str, &[u8]); 5] = [
    ("garbage", &[0xff; 16]),
    ("invalid utf-8", &[0x0a, 0x02, 0xff, 0xfe]),
    ("truncated", &[0x0a, 0x10, b'A']),
    ("2^31 length", &[0x0a, 0x80, 0x80, 0x80, 0x80, 0x08]),
    ("deep nesting", &[0x0b; 10_000]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_do_not_decode_are_invalid_argument_for_every_rpc_and_never_forwarded() {
    let describer = CallDescriber::samsyn().unwrap();
    let rpcs = every_rpc(&describer);
    let stack = Stack::start().await;
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let before = stack.trail.events().len();
    let mut failures = Vec::new();
    let mut calls = 0;
    let mut texts = 0;
    for rpc in &rpcs {
        for (case, bytes) in BAD_BYTES {
            // Invalid UTF-8 is only invalid in a string: field 1 of the request must be one.
            let field_one_is_text = rpc
                .input
                .get_field(1)
                .is_some_and(|f| f.kind() == Kind::String && !f.is_list());
            if case == "invalid utf-8" && !field_one_is_text {
                continue;
            }
            if case == "invalid utf-8" {
                texts += 1;
            }
            let mut grpc = tonic::client::Grpc::new(InterceptedService::new(
                stack.channel(),
                Credentials::bearer(&token),
            ));
            grpc.ready().await.unwrap();
            let path = http::uri::PathAndQuery::from_str(rpc.path).unwrap();
            let mut request = tonic::Request::new(Bytes::from_static(bytes));
            request.set_timeout(CALL_TIMEOUT);
            let status = if rpc.streaming {
                grpc.server_streaming(request, path, RawCodec)
                    .await
                    .map(drop)
                    .err()
            } else {
                grpc.unary(request, path, RawCodec).await.map(drop).err()
            };
            calls += 1;
            let fields = status.as_ref().and_then(|s| {
                tonic_types::StatusExt::get_details_bad_request(s).map(|b| {
                    b.field_violations
                        .into_iter()
                        .map(|v| v.field)
                        .collect::<Vec<_>>()
                })
            });
            let clean = status.as_ref().is_some_and(|s| {
                s.code() == Code::InvalidArgument
                    && fields.as_deref() == Some(&["request".to_owned()][..])
                    && !s.message().contains("Protobuf")
                    && !s.message().contains("failed to decode")
            });
            if !clean {
                failures.push(format!("{} [{case}]: {status:?}", rpc.path));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(texts > 10, "invalid UTF-8 tried on only {texts} RPCs");
    // Each refused at the door and audited as refused: nothing reached a service.
    let events = &stack.trail.events()[before..];
    assert_eq!(events.len(), calls);
    assert!(
        events
            .iter()
            .all(|e| !e.allowed && e.status == Code::InvalidArgument)
    );
    stack.stop().await;
}
