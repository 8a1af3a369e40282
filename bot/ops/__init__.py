"""Operations: GDPR, the doctor's checks, metrics, logging, demo data, staff accounts."""
