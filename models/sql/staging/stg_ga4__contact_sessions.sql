-- GA4 sessions per day, CRM contact id (custom user dimension crm_contact_id) and session source. Every row is
-- kept so untied traffic is measured, not lost: tie_status says whether the row belongs to a contact
-- ('contact', contact_id set) or not: 'not_set' (no id: anonymous visitors, sessions on another device or before
-- the id was set), 'other' (GA4 folded the day's long tail of ids into "(other)"), 'unrecognised' (a value that is
-- not a contact id).
with source as (
    select * from raw.ga4_contact_sessions
),

typed as (
    select
        *,
        try_cast(trim(contact_id) as bigint) as contact_id_number
    from source
),

final as (
    select
        property_id,
        "date" as session_date,
        contact_id_number as contact_id,
        case
            when contact_id_number is not null then 'contact'
            when trim(contact_id) = '(other)' then 'other'
            when contact_id is null or trim(contact_id) in ('', '(not set)') then 'not_set'
            else 'unrecognised'
        end as tie_status,
        session_source as raw_source,
        session_medium as raw_medium,
        session_campaign_name as raw_campaign,
        coalesce(sessions, 0) as sessions,
        coalesce(key_events, 0) as key_events,
        coalesce(purchase_revenue, 0) as purchase_revenue
    from typed
)

select * from final
