"""The e-service catalogue: every service code with its Arabic and English labels.

Labels come from the ministry's own figures (shared/data/ministry_statistics.json,
seed 002) where it names the service; the rest follow the portal's wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Service:
    code: str
    ar: str
    en: str
    # Services a thief uses to hurt an establishment: seed 001's "transactions made
    # without the employer's knowledge". The fraud detector weighs them.
    sensitive: bool = False
    # Work-permit services survive a wage-protection suspension of two months
    # (Saudi Gazette on Mudad: "every service but work permits suspended").
    work_permit: bool = False

    @property
    def label(self) -> str:
        return f"{self.ar} — {self.en}"


_SERVICES: Final[tuple[Service, ...]] = (
    Service("establishment.open_file", "فتح ملف منشأة", "Establishment files opened"),
    Service("establishment.activity_change", "شهادة تغيير نشاط المنشأة",
            "Establishment activity-change certificates"),
    Service("establishment.branch_add", "إضافة فرع منشأة", "Establishment branches added"),
    Service("portal.registration", "التسجيل في البوابة الإلكترونية",
            "Registrations on the portal"),
    Service("account.owner_registered", "الملاك المسجلين", "Registered owners"),
    Service("account.delegate_registered", "المفوضين المسجلين", "Registered delegates",
            sensitive=True),
    Service("account.delegate_confirmed", "تأكيد التفويض", "Delegations confirmed"),
    Service("account.delegate_revoked", "إلغاء تفويض", "Delegations revoked"),
    Service("account.agent_registered", "الوكلاء المسجلين", "Registered agents",
            sensitive=True),
    Service("account.login", "تسجيل الدخول", "Logins"),
    Service("account.login_failed", "محاولة دخول فاشلة", "Failed logins"),
    Service("account.password_changed", "تغيير كلمة المرور", "Password changes",
            sensitive=True),
    Service("account.email_changed", "تغيير البريد الإلكتروني", "E-mail changes",
            sensitive=True),
    Service("worker.join", "إضافة عامل", "Workers joined"),
    Service("permit.issue", "الرخص المصدرة", "Work permits issued", work_permit=True),
    Service("permit.renew", "الرخص المجددة", "Work permits renewed", work_permit=True),
    Service("permit.temporary", "الرخص المؤقتة", "Temporary work permits", work_permit=True),
    Service("permit.final_exit", "رخص الخروج النهائي", "Final-exit work permits",
            sensitive=True, work_permit=True),
    Service("absence.report", "بلاغ تغيب عامل", "Absence-from-work reports filed",
            sensitive=True),
    Service("absence.cancel", "إلغاء بلاغ تغيب", "Absence-from-work reports cancelled"),
    Service("worker.profession_change", "شهادة تغيير مهنة عامل",
            "Worker profession-change certificates"),
    Service("worker.branch_transfer", "شهادة تغيير فرع عامل",
            "Worker branch-change certificates"),
    Service("worker.service_transfer", "شهادة نقل خدمة", "Service-transfer certificates",
            sensitive=True),
    Service("dependents.transfer", "نقل خدمة التابعين", "Dependants' service transfers"),
    Service("visa.issue", "إصدار تأشيرات", "Visas issued"),
    Service("visa.cancel", "إلغاء تأشيرات", "Visas cancelled"),
    Service("visa.compensatory_request", "طلبات الاستقدام التعويضية",
            "Compensatory recruitment requests"),
    Service("recruitment.balance_request", "الاستقدام - طلب رصيد",
            "Recruitment balance requests"),
    Service("recruitment.disbursement_request", "الاستقدام - طلب صرف",
            "Recruitment disbursement requests"),
    Service("certificate.saudization", "شهادة السعودة", "Saudization certificates"),
    Service("payroll.wage_protection_upload", "رفع مسيرات حماية الأجور",
            "Wage-protection payroll uploads"),
    Service("integration.passports_sync", "تحديث بيانات الجوازات", "Passports records sync"),
    Service("integration.imprisonment_flag", "إشعار سجن عامل", "Imprisonment flags"),
    Service("audit.reversal", "عكس معاملة بأمر مدقق", "Auditor-ordered reversals"),
)

CATALOGUE: Final[dict[str, Service]] = {s.code: s for s in _SERVICES}
SERVICE_CODES: Final[tuple[str, ...]] = tuple(CATALOGUE)


def service(code: str) -> Service:
    return CATALOGUE[code]
