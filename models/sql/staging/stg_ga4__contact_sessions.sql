-- GA4 sessions per day for visitors carrying the CRM contact id (custom user dimension crm_contact_id).
-- Values that are not a contact id ('(not set)', empty) are dropped here.
with source as (
    select * from raw.ga4_contact_sessions
),

final as (
    select
        property_id,
        "date" as session_date,
        try_cast(trim(contact_id) as bigint) as contact_id,
        session_source as raw_source,
        session_medium as raw_medium,
        session_campaign_name as raw_campaign,
        coalesce(sessions, 0) as sessions,
        coalesce(key_events, 0) as key_events
    from source
    where try_cast(trim(contact_id) as bigint) is not null
)

select * from final
