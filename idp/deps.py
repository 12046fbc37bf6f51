"""Everything the IdP's code needs, built once per process by ``build_deps``.

Tests build their own (a fake clock, a test database) and hand it to ``create_app``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from idp.accounts.issuance import AccountIssuance
from idp.accounts.service import Accounts
from idp.accounts.service import PasswordAuthenticator
from idp.accounts.sessions import LoginSessions
from idp.accounts.sessions import SessionPolicy
from idp.accounts.throttle import ThrottlePolicy
from idp.clock import Clock
from idp.clock import SystemClock
from idp.enrol.binding import PhoneBinding
from idp.enrol.kyc import HttpKycProvider
from idp.enrol.kyc import KycProvider
from idp.enrol.service import Proofing
from idp.mfa.challenges import ChallengeStore
from idp.mfa.device_keys import DeviceKeys
from idp.mfa.fatigue import PushPolicy
from idp.mfa.push import HttpPushGateway
from idp.mfa.push import PushGateway
from idp.mfa.service import PushConfirmation
from idp.mfa.totp import TotpVerifier
from idp.oidc.clients import ClientRegistrations
from idp.oidc.clients import ClientRegistry
from idp.oidc.keys import KeyRing
from idp.oidc.tokens import TokenSigner
from idp.revocation.service import RevocationList
from idp.revocation.suspension import Revoker
from idp.revocation.suspension import Suspensions
from idp.revocation.working_days import WorkingCalendar
from idp.settings import Settings
from idp.store.db import make_engine
from idp.store.db import make_session_factory
from idp.store.durable import FallbackStore
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import Keys
from idp.store.ephemeral import make_store
from idp.store.secrets import DataCipher


@dataclass(frozen=True)
class Deps:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: EphemeralStore
    keys: Keys
    clock: Clock
    cipher: DataCipher
    keyring: KeyRing
    clients: ClientRegistry
    registrations: ClientRegistrations
    revocations: RevocationList
    signer: TokenSigner
    throttle: ThrottlePolicy
    session_policy: SessionPolicy
    login_sessions: LoginSessions
    kyc: KycProvider
    push: PushGateway
    challenges: ChallengeStore
    push_policy: PushPolicy
    calendar: WorkingCalendar
    confirmation: PushConfirmation
    totp: TotpVerifier
    device_keys: DeviceKeys
    accounts: Accounts
    issuance: AccountIssuance
    authenticator: PasswordAuthenticator
    proofing: Proofing
    binding: PhoneBinding
    suspensions: Suspensions

    @property
    def revoker(self) -> Revoker:
        return self.suspensions.revoker


def build_deps(
    settings: Settings,
    *,
    clock: Clock | None = None,
    store: EphemeralStore | None = None,
    engine: Engine | None = None,
    kyc: KycProvider | None = None,
    push: PushGateway | None = None,
) -> Deps:
    engine = engine if engine is not None else make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    keys = Keys(settings.redis_namespace)
    clock = clock or SystemClock()
    if store is None:
        store = make_store(settings.redis_url)
        if store.is_shared and engine.dialect.name == "postgresql":
            store = FallbackStore(
                store,
                engine,
                shared_prefix=keys.revocations_prefix,
                database_prefixes=(keys.client_assertion_jti_prefix,),
                now=clock.now,
            )
    cipher = DataCipher(settings.data_key_bytes)
    keyring = KeyRing(sessions, cipher, clock=clock, overlap=settings.key_overlap)
    revocations = RevocationList(store, keys)
    challenges = ChallengeStore(store, keys)
    push = push or HttpPushGateway(
        relay_url=settings.nexus_relay_url,
        api_key=settings.nexus_api_key.get_secret_value(),
        timeout=settings.nexus_timeout,
    )
    throttle = ThrottlePolicy(
        throttle_after=settings.login_throttle_after,
        base_delay=settings.login_throttle_base_delay,
        max_delay=settings.login_throttle_max_delay,
        lockout_after=settings.login_lockout_after,
        lockout_seconds=settings.login_lockout_seconds,
        max_failures=settings.login_max_consecutive_failures,
        ip_failure_limit=settings.login_ip_failure_limit,
        ip_window=settings.login_ip_window,
    )
    accounts = Accounts(
        cipher=cipher,
        temporary_ttl=settings.temporary_password_ttl,
        min_length=settings.password_min_length,
        history=settings.password_history,
    )
    session_policy = SessionPolicy(
        max_age=settings.session_max_age, idle_timeout=settings.session_idle_timeout
    )
    push_policy = PushPolicy(
        limit=settings.mfa_push_limit,
        window=settings.mfa_push_window,
        backoff=settings.mfa_denial_backoff,
        pause_after=settings.mfa_denial_lock_after,
    )
    calendar = WorkingCalendar(
        extra_days_off=settings.days_off, extra_working_days=settings.working_days
    )
    return Deps(
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=store,
        keys=keys,
        clock=clock,
        cipher=cipher,
        keyring=keyring,
        clients=ClientRegistry(sessions, cipher),
        registrations=ClientRegistrations(cipher),
        revocations=revocations,
        signer=TokenSigner(
            keyring,
            issuer=settings.issuer,
            access_ttl=settings.access_token_ttl,
            id_ttl=settings.id_token_ttl,
        ),
        throttle=throttle,
        session_policy=session_policy,
        login_sessions=LoginSessions(session_policy),
        kyc=kyc
        or HttpKycProvider(
            issuer=settings.paotang_issuer,
            client_id=settings.paotang_client_id,
            client_secret=settings.paotang_client_secret.get_secret_value(),
            redirect_uri=f"{settings.issuer}/enrol/proofing/callback",
            timeout=settings.paotang_timeout,
            trust_framework=settings.paotang_trust_framework,
        ),
        push=push,
        challenges=challenges,
        calendar=calendar,
        push_policy=push_policy,
        confirmation=PushConfirmation(
            challenges=challenges,
            gateway=push,
            policy=push_policy,
            store=store,
            keys=keys,
            answer_to=f"{settings.issuer}/mfa/answers",
            ttl=settings.mfa_challenge_ttl,
            revocations=revocations,
            access_token_ttl=settings.access_token_ttl,
        ),
        totp=TotpVerifier(cipher=cipher, store=store, keys=keys),
        device_keys=DeviceKeys(issuer=settings.issuer, relay_url=settings.nexus_relay_url),
        accounts=accounts,
        issuance=AccountIssuance(accounts, cipher),
        authenticator=PasswordAuthenticator(policy=throttle, cipher=cipher, store=store, keys=keys),
        proofing=Proofing(cipher=cipher, ial=settings.proofing_ial),
        binding=PhoneBinding(
            cipher=cipher,
            issuer=settings.issuer,
            relay_url=settings.nexus_relay_url,
            code_ttl=settings.activation_code_ttl,
            proofing_valid_for=timedelta(seconds=settings.proofing_valid_for),
        ),
        suspensions=Suspensions(
            Revoker(revocations, challenges, settings.access_token_ttl),
            calendar,
            letter_days=settings.lost_phone_letter_days,
            access_pass_ttl=timedelta(seconds=settings.access_pass_ttl),
        ),
    )
