use super::*;

fn case_manager() -> Principal {
    Principal {
        id: "SE2321000016-CM01".into(),
        kind: PrincipalKind::Staff,
        organisation: Some("SE2321000016-PSYK".into()),
        unit: Some("fact-nordvast".into()),
        roles: vec!["case_manager".into()],
        teams: vec!["fact-nw".into()],
        purpose: Some("care".into()),
        acting_through: None,
    }
}

fn issuer() -> (tempfile::TempDir, DevIssuer) {
    let dir = tempfile::tempdir().unwrap();
    let issuer = DevIssuer::at(dir.path());
    issuer.ensure().unwrap();
    (dir, issuer)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(principal: &Principal) -> Claims {
    Claims {
        iss: DevIssuer::ISSUER.into(),
        aud: DevIssuer::AUDIENCE.into(),
        sub: principal.id.clone(),
        exp: now() + 600,
        iat: Some(now()),
        nbf: None,
        kind: principal.kind,
        org: principal.organisation.clone(),
        unit: principal.unit.clone(),
        roles: principal.roles.clone(),
        teams: principal.teams.clone(),
        purpose: principal.purpose.clone(),
        jti: None,
    }
}

/// The principal `token` stands for at `t`, with `verifier`'s keys.
fn principal_at(verifier: &TokenVerifier, token: &str, t: u64) -> Result<Principal, AuthError> {
    verifier.verify_at(token, t).map(|v| v.principal)
}

/// Signs arbitrary claims with the development key.
fn signed(issuer: &DevIssuer, claims: &Claims) -> String {
    let key = EncodingKey::from_ec_pem(&std::fs::read(issuer.private_key()).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(DevIssuer::KEY_ID.into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[test]
fn a_dev_token_verifies_to_its_principal() {
    let (_dir, issuer) = issuer();
    let token = issuer
        .issue(&case_manager(), Duration::from_secs(600))
        .unwrap();
    assert_eq!(
        issuer.verifier().unwrap().verify(&token),
        Ok(case_manager())
    );
}

#[test]
fn alg_none_is_refused() {
    let (_dir, issuer) = issuer();
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64(&serde_json::to_vec(&claims(&case_manager())).unwrap());
    let token = format!("{header}.{body}.");
    assert_eq!(
        issuer.verifier().unwrap().verify(&token),
        Err(AuthError::Invalid)
    );
}

#[test]
fn hmac_keyed_with_the_public_key_is_refused() {
    let (_dir, issuer) = issuer();
    let secret = std::fs::read(issuer.public_key()).unwrap();
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&case_manager()),
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    assert_eq!(
        issuer.verifier().unwrap().verify(&token),
        Err(AuthError::Invalid)
    );
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let (_dir, issuer) = issuer();
    let (_other_dir, other) = self::issuer();
    let token = other
        .issue(&case_manager(), Duration::from_secs(600))
        .unwrap();
    assert_eq!(
        issuer.verifier().unwrap().verify(&token),
        Err(AuthError::Invalid)
    );
}

#[test]
fn expired_tokens_are_refused() {
    let (_dir, issuer) = issuer();
    let mut expired = claims(&case_manager());
    expired.exp = now() - 120;
    assert_eq!(
        issuer
            .verifier()
            .unwrap()
            .verify(&signed(&issuer, &expired)),
        Err(AuthError::Expired)
    );
}

#[test]
fn another_audience_or_issuer_is_refused() {
    let (_dir, issuer) = issuer();
    let mut other_audience = claims(&case_manager());
    other_audience.aud = "journal-system".into();
    let mut other_issuer = claims(&case_manager());
    other_issuer.iss = "https://idp.example".into();
    for claims in [other_audience, other_issuer] {
        assert_eq!(
            issuer.verifier().unwrap().verify(&signed(&issuer, &claims)),
            Err(AuthError::WrongIssuerOrAudience)
        );
    }
}

#[test]
fn incomplete_or_oversized_claims_are_refused() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let mut no_org = claims(&case_manager());
    no_org.org = None;
    assert_eq!(
        verifier.verify(&signed(&issuer, &no_org)),
        Err(AuthError::Claims("org"))
    );
    let mut system = claims(&case_manager());
    system.kind = PrincipalKind::System;
    assert_eq!(
        verifier.verify(&signed(&issuer, &system)),
        Err(AuthError::Claims("kind"))
    );
    let mut many_roles = claims(&case_manager());
    many_roles.roles = vec!["nurse".into(); 33];
    assert_eq!(
        verifier.verify(&signed(&issuer, &many_roles)),
        Err(AuthError::Claims("roles"))
    );
    let mut participant = claims(&case_manager());
    participant.kind = PrincipalKind::Participant;
    participant.org = None;
    assert_eq!(
        verifier.verify(&signed(&issuer, &participant)),
        Err(AuthError::Claims("sub")),
        "a participant's subject is their internal id, never a personal identity number"
    );
    participant.sub = "0193a3c2-7d2e-7b4a-9a51-3f0c2d1e4b5a".into();
    assert_eq!(
        verifier
            .verify(&signed(&issuer, &participant))
            .unwrap()
            .kind,
        PrincipalKind::Participant
    );
}

#[test]
fn garbage_and_empty_tokens_are_refused() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    assert_eq!(verifier.verify(""), Err(AuthError::Missing));
    assert_eq!(verifier.verify("not-a-jwt"), Err(AuthError::Invalid));
    assert_eq!(
        verifier.verify(&"a".repeat(10_000)),
        Err(AuthError::Invalid)
    );
}

#[test]
fn keys_load_from_a_jwks_file() {
    let (dir, issuer) = issuer();
    let pem = std::fs::read_to_string(issuer.public_key()).unwrap();
    // The public point of the dev key, as a JWK: x and y are the last 64 bytes of the SPKI.
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|spki: rustls_pki_types::SubjectPublicKeyInfoDer<'_>| spki.as_ref().to_vec())
        .unwrap();
    let point = &der[der.len() - 64..];
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": DevIssuer::KEY_ID, "alg": "ES256", "use": "sig",
        "x": b64(&point[..32]), "y": b64(&point[32..]),
    }]});
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    let settings = IssuerSettings {
        jwks_file: Some(path),
        ..DevIssuer::settings()
    };
    let verifier = TokenVerifier::new(
        vec![Issuer::from_settings(&settings).unwrap()],
        Arc::default(),
    );
    let token = issuer
        .issue(&case_manager(), Duration::from_secs(60))
        .unwrap();
    assert_eq!(verifier.verify(&token), Ok(case_manager()));
}

#[test]
fn a_remembered_token_speaks_only_for_itself_and_only_until_it_expires() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let token = issuer
        .issue(&case_manager(), Duration::from_secs(600))
        .unwrap();
    assert_eq!(verifier.verify(&token), Ok(case_manager()));
    assert_eq!(verifier.verify(&token), Ok(case_manager()), "remembered");
    // A token with the remembered one's signature and other claims is checked afresh.
    let mut forged_claims = claims(&case_manager());
    forged_claims.roles = vec!["physician".into()];
    let forged_body = b64(&serde_json::to_vec(&forged_claims).unwrap());
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[1] = &forged_body;
    assert_eq!(verifier.verify(&parts.join(".")), Err(AuthError::Invalid));
    // Within the leeway an expired token still verifies, but is never remembered: the next
    // call checks it again and, once past the leeway, refuses it.
    let mut ending = claims(&case_manager());
    ending.exp = now() - 1;
    let ending = signed(&issuer, &ending);
    assert_eq!(verifier.verify(&ending), Ok(case_manager()));
    assert!(!verifier.remembered().values().any(|v| v.expires_at < now()));
}

const DAY: u64 = 24 * 60 * 60;
const YEAR: u64 = 365 * DAY;

/// Claims issued at `iat` for `lifetime` seconds.
fn claims_at(iat: u64, lifetime: u64) -> Claims {
    Claims {
        iat: Some(iat),
        exp: iat + lifetime,
        ..claims(&case_manager())
    }
}

#[test]
fn a_token_valid_only_from_a_day_ahead_is_refused() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let t = now();
    let tomorrow = Claims {
        nbf: Some(t + DAY),
        ..claims_at(t, 600)
    };
    assert_eq!(
        principal_at(&verifier, &signed(&issuer, &tomorrow), t),
        Err(AuthError::NotYetValid)
    );
}

#[test]
fn a_token_issued_a_year_ahead_is_refused() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let t = now();
    let next_year = claims_at(t + YEAR, 600);
    assert_eq!(
        principal_at(&verifier, &signed(&issuer, &next_year), t),
        Err(AuthError::NotYetValid)
    );
}

#[test]
fn a_token_living_fifty_years_is_refused() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let t = now();
    let fifty_years = claims_at(t, 50 * YEAR);
    assert_eq!(
        principal_at(&verifier, &signed(&issuer, &fifty_years), t),
        Err(AuthError::TooLong)
    );
    // Without `iat` the lifetime counts from now.
    let undated = Claims {
        iat: None,
        ..fifty_years
    };
    assert_eq!(
        principal_at(&verifier, &signed(&issuer, &undated), t),
        Err(AuthError::TooLong)
    );
    let undated_short = Claims {
        iat: None,
        ..claims_at(t, 600)
    };
    assert_eq!(
        principal_at(&verifier, &signed(&issuer, &undated_short), t),
        Ok(case_manager())
    );
}

#[test]
fn a_token_just_inside_the_leeway_and_the_lifetime_is_accepted() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let limits = TokenLimits::default();
    let t = now();
    // The issuer's clock runs the whole leeway ahead of ours.
    let ahead = Claims {
        nbf: Some(t + limits.leeway_seconds),
        ..claims_at(t + limits.leeway_seconds, limits.max_lifetime_seconds)
    };
    assert_eq!(
        principal_at(&verifier, &signed(&issuer, &ahead), t),
        Ok(case_manager())
    );
    let one_second_more = Claims {
        nbf: None,
        ..claims_at(t + limits.leeway_seconds + 1, 600)
    };
    assert_eq!(
        principal_at(&verifier, &signed(&issuer, &one_second_more), t),
        Err(AuthError::NotYetValid)
    );
    let longer = claims_at(t, limits.max_lifetime_seconds + 1);
    assert_eq!(
        principal_at(&verifier, &signed(&issuer, &longer), t),
        Err(AuthError::TooLong)
    );
}

#[test]
fn configured_limits_replace_the_defaults() {
    let (_dir, issuer) = issuer();
    let strict = issuer.verifier().unwrap().with_limits(TokenLimits {
        leeway_seconds: 0,
        max_lifetime_seconds: 300,
    });
    let t = now();
    for (claims, refusal) in [
        (claims_at(t + 1, 60), AuthError::NotYetValid),
        (claims_at(t, 600), AuthError::TooLong),
    ] {
        assert_eq!(
            principal_at(&strict, &signed(&issuer, &claims), t),
            Err(refusal)
        );
    }
    assert_eq!(
        principal_at(&strict, &signed(&issuer, &claims_at(t, 300)), t),
        Ok(case_manager())
    );
}

#[test]
fn a_remembered_token_is_refused_once_past_its_expiry() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let t = now();
    let token = signed(&issuer, &claims_at(t, 600));
    assert_eq!(principal_at(&verifier, &token, t), Ok(case_manager()));
    assert_eq!(principal_at(&verifier, &token, t + 1), Ok(case_manager()));
    assert_eq!(verifier.remembered().len(), 1, "remembered");
    let past = t + 600 + TokenLimits::default().leeway_seconds + 1;
    assert_eq!(
        principal_at(&verifier, &token, past),
        Err(AuthError::Expired)
    );
}

#[test]
fn development_tokens_pass_the_time_checks() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    // `samsyn token`'s default (eight hours) and its longest (twelve).
    for hours in [8, 12] {
        let token = issuer
            .issue(&case_manager(), Duration::from_secs(hours * 60 * 60))
            .unwrap();
        assert_eq!(verifier.verify(&token), Ok(case_manager()), "{hours} h");
    }
}

#[test]
fn a_municipal_issuer_cannot_mint_region_staff_nor_participants() {
    let (dir, issuer) = issuer();
    let pem = std::fs::read(issuer.public_key()).unwrap();
    let municipal = IssuerSettings {
        organisations: vec!["1283".into()],
        participants: false,
        ..DevIssuer::settings()
    };
    let key = DecodingKey::from_ec_pem(&pem).unwrap();
    let verifier = TokenVerifier::new(
        vec![Issuer::fixed(
            &municipal,
            municipal.speaks(),
            vec![(DevIssuer::KEY_ID.into(), key, Some(Algorithm::ES256))],
        )],
        Arc::default(),
    );
    let officer = Principal {
        organisation: Some("1283".into()),
        ..case_manager()
    };
    assert_eq!(
        verifier.verify(&signed(&issuer, &claims(&officer))),
        Ok(officer)
    );
    assert_eq!(
        verifier.verify(&signed(&issuer, &claims(&case_manager()))),
        Err(AuthError::ForeignOrganisation),
        "region staff from a municipality's issuer"
    );
    let participant = Principal {
        id: uuid::Uuid::new_v4().to_string(),
        kind: PrincipalKind::Participant,
        organisation: None,
        ..case_manager()
    };
    assert_eq!(
        verifier.verify(&signed(&issuer, &claims(&participant))),
        Err(AuthError::ForeignOrganisation)
    );
    drop(dir);
}

#[test]
fn an_unknown_key_id_is_reported_as_such_and_a_revoked_session_refused() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let key = EncodingKey::from_ec_pem(&std::fs::read(issuer.private_key()).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rotated-2".into());
    let unknown = jsonwebtoken::encode(&header, &claims(&case_manager()), &key).unwrap();
    assert_eq!(verifier.verify(&unknown), Err(AuthError::UnknownKey));

    let mut with_id = claims(&case_manager());
    with_id.jti = Some("token-7".into());
    let token = signed(&issuer, &with_id);
    assert_eq!(
        verifier.verify(&token),
        Ok(case_manager()),
        "remembered now"
    );
    verifier.revoked().add([Revocation {
        issuer: Some(DevIssuer::ISSUER.into()),
        token_id: Some("token-7".into()),
        subject: None,
        revoked_at: now(),
        until: now() + 600,
    }]);
    assert_eq!(
        verifier.verify(&token),
        Err(AuthError::Revoked),
        "even when remembered"
    );
    assert_eq!(
        verifier.verify(&signed(&issuer, &claims(&case_manager()))),
        Ok(case_manager())
    );
}

#[test]
fn claims_map_from_an_hsa_style_provider() {
    let mapping: ClaimMapping = serde_json::from_value(serde_json::json!({
        "subject": "employeeHsaId",
        "organisation": "/commission/healthCareProviderHsaId",
        "unit": "/commission/healthCareUnitHsaId",
        "roles": "/commission/commissionRight",
        "purpose": "/commission/commissionPurpose",
        "role_values": {"Läkare": "physician", "Case manager": "case_manager"},
        "purpose_values": {"Vård och behandling": "care"},
    }))
    .unwrap();
    let (_dir, issuer) = issuer();
    let settings = IssuerSettings {
        claims: mapping,
        organisations: vec!["SE2321000255".into()],
        ..DevIssuer::settings()
    };
    let key = DecodingKey::from_ec_pem(&std::fs::read(issuer.public_key()).unwrap()).unwrap();
    let verifier = TokenVerifier::new(
        vec![Issuer::fixed(
            &settings,
            settings.speaks(),
            vec![(DevIssuer::KEY_ID.into(), key, None)],
        )],
        Arc::default(),
    );
    let body = serde_json::json!({
        "iss": DevIssuer::ISSUER, "aud": DevIssuer::AUDIENCE, "sub": "pairwise-7f3a",
        "exp": now() + 300, "iat": now(), "employeeHsaId": "SE2321000255-L001",
        "commission": {
            "healthCareProviderHsaId": "SE2321000255", "healthCareUnitHsaId": "SE2321000255-FACT",
            "commissionRight": ["Läkare", "Administratör"], "commissionPurpose": "Vård och behandling",
        },
    });
    let key = EncodingKey::from_ec_pem(&std::fs::read(issuer.private_key()).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(DevIssuer::KEY_ID.into());
    let token = jsonwebtoken::encode(&header, &body, &key).unwrap();
    assert_eq!(
        verifier.verify(&token),
        Ok(Principal {
            id: "SE2321000255-L001".into(),
            kind: PrincipalKind::Staff,
            organisation: Some("SE2321000255".into()),
            unit: Some("SE2321000255-FACT".into()),
            roles: vec!["physician".into()],
            teams: vec![],
            purpose: Some("care".into()),
            acting_through: None,
        }),
        "unlisted role values are dropped, Swedish values translated"
    );
}

#[test]
fn an_id_token_verifies_only_for_its_client_and_its_times() {
    let (_dir, issuer) = issuer();
    let verifier = issuer.verifier().unwrap();
    let mut id_token = claims(&case_manager());
    id_token.aud = "samsyn-board".into();
    let signed_id_token = signed(&issuer, &id_token);
    let verified = verifier
        .verify_id_token(&signed_id_token, "samsyn-board")
        .unwrap();
    assert_eq!(verified["sub"], case_manager().id.as_str());
    // An access token (for the gateway's audience) is not an ID token of the client.
    let access_token = signed(&issuer, &claims(&case_manager()));
    assert_eq!(
        verifier.verify_id_token(&access_token, "samsyn-board"),
        Err(AuthError::WrongIssuerOrAudience)
    );
    assert_eq!(
        verifier.verify_id_token(&signed_id_token, "another-client"),
        Err(AuthError::WrongIssuerOrAudience)
    );
    id_token.exp = now() - 3600;
    id_token.iat = Some(now() - 4000);
    assert!(
        verifier
            .verify_id_token(&signed(&issuer, &id_token), "samsyn-board")
            .is_err()
    );
    let mut tampered = signed_id_token.clone();
    tampered.pop();
    assert!(verifier.verify_id_token(&tampered, "samsyn-board").is_err());
}
