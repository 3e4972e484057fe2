-- One row per contact interaction, from four places:
--   hubspot_original_source  HubSpot's original source at hs_analytics_first_timestamp; UTMs parsed from the first
--                            page URL when it has them, else the plan's mapping of hs_analytics_source (+ drill-down)
--   hubspot_latest_source    HubSpot's latest source at hs_latest_source_timestamp (same mapping)
--   ga4_session              GA4 sessions of the contact (custom dimension crm_contact_id), one per day and source,
--                            dated at the start of the day in the reporting time zone
--   offline                  the "how did you hear about us" answer, at the contact's createdate
-- The same interaction seen twice (e.g. the first visit in HubSpot and in GA4, or original = latest source) is kept
-- once: one touch per contact, local day, channel, source and medium, preferring HubSpot's exact timestamp.
with params as (
    select
        max(value) filter (where name = 'reporting_time_zone') as time_zone
    from cfg_params
),

contacts as (
    select
        stg_hubspot__contacts.*,
        coalesce(regexp_matches(first_url, '[?&#]utm_(source|medium)='), false) as first_url_has_utms,
        timezone(params.time_zone, first_touch_at)::date as first_touch_date
    from stg_hubspot__contacts
    cross join params
),

-- Local midnight of each GA4 day, computed once per distinct day rather than once per session row.
ga4_days as (
    select session_date, timezone(params.time_zone, session_date::timestamp) as day_start
    from (select distinct session_date from stg_ga4__contact_sessions)
    cross join params
),

-- UTMs of the first page seen, parsed once per contact (only where the URL carries them).
first_url_utms as (
    select
        contact_id,
        coalesce(regexp_extract(first_url, '[?&#]utm_source=([^&#]*)', 1), '') as raw_source,
        coalesce(regexp_extract(first_url, '[?&#]utm_medium=([^&#]*)', 1), '') as raw_medium,
        coalesce(regexp_extract(first_url, '[?&#]utm_campaign=([^&#]*)', 1), '') as raw_campaign,
        coalesce(regexp_extract(first_url, '[?&#]utm_term=([^&#]*)', 1), '') as raw_term,
        coalesce(regexp_extract(first_url, '[?&#]utm_content=([^&#]*)', 1), '') as raw_content
    from contacts
    where first_url_has_utms
),

-- Free-text values (drill-downs, offline answers) normalised once per distinct value, not once per contact.
free_text as (
    select distinct value
    from (
        select original_source_data_1 as value from contacts
        union all select original_source_data_2 from contacts
        union all select latest_source_data_1 from contacts
        union all select latest_source_data_2 from contacts
        union all select heard_about_us from contacts
    )
    where value is not null
),

normalised_text as (
    select value, roi_normalise(value) as normalised from free_text
),

contact_answers as (
    select contacts.contact_id, normalised_text.normalised as answer
    from contacts
    join normalised_text on normalised_text.value = contacts.heard_about_us
    where normalised_text.normalised is not null
),

merges as (
    select * from stg_hubspot__contact_merges
),

utms as (
    select * from int_utm_normalised
),

hubspot_sources as (
    select * from cfg_tagging_hubspot_sources
),

source_aliases as (
    select alias, canonical from cfg_tagging_aliases where field = 'source'
),

campaign_aliases as (
    select alias, canonical from cfg_tagging_aliases where field = 'campaign'
),

offline_answers as (
    select * from cfg_tagging_offline_answers
),

answered_offline as (
    select contact_answers.contact_id
    from contact_answers
    join offline_answers on offline_answers.key = contact_answers.answer
),

-- Original source with UTMs on the first page seen.
original_with_utms as (
    select
        contacts.contact_id,
        'hubspot_original_source' as touch_type,
        1 as precedence,
        coalesce(contacts.first_touch_at, contacts.created_at) as touchpoint_at,
        utms.channel, utms.source, utms.medium, utms.campaign, utms.term, utms.content, utms.matched_rule,
        0 as sessions
    from contacts
    join first_url_utms on first_url_utms.contact_id = contacts.contact_id
    join utms
        on utms.raw_source = first_url_utms.raw_source
        and utms.raw_medium = first_url_utms.raw_medium
        and utms.raw_campaign = first_url_utms.raw_campaign
        and utms.raw_term = first_url_utms.raw_term
        and utms.raw_content = first_url_utms.raw_content
),

-- HubSpot's source enumeration (original without UTMs, and latest), through the plan's mapping.
hubspot_source_touches as (
    select
        contact_id,
        'hubspot_original_source' as touch_type,
        1 as precedence,
        coalesce(first_touch_at, created_at) as touchpoint_at,
        original_source as hubspot_source,
        original_source_data_1 as data_1,
        original_source_data_2 as data_2
    from contacts
    where original_source is not null
      and not first_url_has_utms
      -- An offline contact who answered the question is represented by the offline touch.
      and not (original_source = 'OFFLINE' and contact_id in (select contact_id from answered_offline))
    union all
    select
        contact_id,
        'hubspot_latest_source' as touch_type,
        3 as precedence,
        latest_source_at as touchpoint_at,
        latest_source,
        latest_source_data_1,
        latest_source_data_2
    from contacts
    where latest_source is not null and latest_source_at is not null
      -- the original interaction again, or an offline record the offline touch already represents
      and not (latest_source = original_source and latest_source_at = coalesce(first_touch_at, created_at))
      and not (latest_source = 'OFFLINE' and contact_id in (select contact_id from answered_offline))
),

hubspot_drilldowns as (
    select
        touches.*,
        mapping.key as mapping_key,
        mapping.channel as mapping_channel,
        mapping.source as mapping_source,
        mapping.source_from,
        mapping.medium as mapping_medium,
        mapping.campaign as mapping_campaign,
        mapping.campaign_from,
        case mapping.source_from when 'data_1' then touches.data_1 when 'data_2' then touches.data_2 end
            as source_text,
        case mapping.campaign_from when 'data_1' then touches.data_1 when 'data_2' then touches.data_2 end
            as campaign_text
    from hubspot_source_touches as touches
    left join hubspot_sources as mapping on mapping.key = touches.hubspot_source
),

hubspot_mapped as (
    select
        touches.contact_id,
        touches.touch_type,
        touches.precedence,
        touches.touchpoint_at,
        coalesce(touches.mapping_channel, 'unassigned') as channel,
        case
            when touches.mapping_key is null then lower(touches.hubspot_source)
            when touches.source_from is null then touches.mapping_source
            else coalesce(source_aliases.canonical, source_text.normalised)
        end as source,
        touches.mapping_medium as medium,
        case
            when touches.campaign_from is null then touches.mapping_campaign
            else coalesce(campaign_aliases.canonical, campaign_text.normalised)
        end as campaign,
        null as term,
        null as content,
        case
            when touches.mapping_key is null then 'unmatched_hubspot_source'
            else 'hubspot_source:' || touches.mapping_key
        end as matched_rule,
        0 as sessions
    from hubspot_drilldowns as touches
    left join normalised_text as source_text on source_text.value = touches.source_text
    left join normalised_text as campaign_text on campaign_text.value = touches.campaign_text
    left join source_aliases on source_aliases.alias = source_text.normalised
    left join campaign_aliases on campaign_aliases.alias = campaign_text.normalised
),

ga4_sessions as (
    select
        coalesce(merges.surviving_contact_id, sessions.contact_id) as contact_id,
        'ga4_session' as touch_type,
        4 as precedence,
        -- GA4 gives the day only. HubSpot's first visit is by definition the first: a session on that same day
        -- is placed just after it, otherwise at the start of the day (reporting time zone).
        case
            when sessions.session_date = contacts.first_touch_date
                then contacts.first_touch_at + interval 1 millisecond
            else ga4_days.day_start
        end as touchpoint_at,
        sessions.session_date as touch_date,
        utms.channel, utms.source, utms.medium, utms.campaign, utms.term, utms.content, utms.matched_rule,
        sessions.sessions
    from stg_ga4__contact_sessions as sessions
    join ga4_days on ga4_days.session_date = sessions.session_date
    left join merges on merges.merged_contact_id = sessions.contact_id
    left join contacts on contacts.contact_id = coalesce(merges.surviving_contact_id, sessions.contact_id)
    join utms
        on utms.raw_source = coalesce(sessions.raw_source, '')
        and utms.raw_medium = coalesce(sessions.raw_medium, '')
        and utms.raw_campaign = coalesce(sessions.raw_campaign, '')
        and utms.raw_term = ''
        and utms.raw_content = ''
    where sessions.tie_status = 'contact'
),

offline as (
    select
        contacts.contact_id,
        'offline' as touch_type,
        2 as precedence,
        contacts.created_at as touchpoint_at,
        coalesce(answers.channel, 'unassigned') as channel,
        coalesce(answers.source, contact_answers.answer) as source,
        coalesce(answers.medium, 'offline') as medium,
        answers.campaign,
        null as term,
        null as content,
        case
            when answers.key is null then 'unmatched_offline_answer'
            else 'offline_answer:' || answers.key
        end as matched_rule,
        0 as sessions
    from contact_answers
    join contacts on contacts.contact_id = contact_answers.contact_id
    left join offline_answers as answers on answers.key = contact_answers.answer
),

all_touches as (
    select * from original_with_utms
    union all by name
    select * from hubspot_mapped
    union all by name
    select * from ga4_sessions
    union all by name
    select * from offline
),

known_contacts as (
    select
        all_touches.* replace (
            coalesce(all_touches.touch_date, timezone(params.time_zone, all_touches.touchpoint_at)::date)
                as touch_date
        )
    from all_touches
    cross join params
    where all_touches.touchpoint_at is not null
      and all_touches.contact_id in (select contact_id from contacts)
),

deduplicated as (
    -- one row per interaction; the preferred record (lowest precedence, then earliest) gives type, time and rule
    select
        contact_id,
        touch_date,
        channel,
        source,
        medium,
        arg_min(
            {
                'touch_type': touch_type, 'touchpoint_at': touchpoint_at, 'matched_rule': matched_rule,
                'campaign': campaign, 'term': term, 'content': content
            },
            precedence * 10000000000000 + epoch_ms(touchpoint_at)
        ) as preferred,
        sum(sessions) as sessions,
        -- keep campaign/term/content if any record of the interaction carried them
        max(campaign) as any_campaign,
        max(term) as any_term,
        max(content) as any_content
    from known_contacts
    group by contact_id, touch_date, channel, source, medium
),

final as (
    select
        preferred.touch_type || ':' || contact_id || ':' || epoch_ms(preferred.touchpoint_at) || ':'
            || channel || ':' || coalesce(source, '') || '/' || coalesce(medium, '') as touchpoint_id,
        contact_id,
        preferred.touchpoint_at as touchpoint_at,
        touch_date,
        preferred.touch_type as touch_type,
        channel,
        source,
        medium,
        coalesce(preferred.campaign, any_campaign) as campaign,
        coalesce(preferred.term, any_term) as term,
        coalesce(preferred.content, any_content) as content,
        preferred.matched_rule as matched_rule,
        sessions
    from deduplicated
)

select * from final
