-- For every deal (won, open, lost): the touchpoints of its contacts from `lookback_days` before the deal was
-- created up to the conversion (closedate for won deals, the end of the as_of day otherwise), in time order
-- (ties broken by touchpoint_id), with the milestone flags the position-based models need:
--   is_first_touch     touch 1
--   is_lead_creation   last touch at/before the (earliest) moment a contact of the deal became a lead
--                      (hs_lifecyclestage_lead_date, else createdate); none when no touch precedes it
--   is_deal_creation   last touch at/before the deal's createdate
--   is_closed_won      won deals: last touch at/before closedate
-- Several flags can sit on one touch. Deals without any touchpoint are not here (they stay in int_deals).
with params as (
    select
        try_cast(max(value) filter (where name = 'lookback_days') as integer) as lookback_days,
        try_cast(max(value) filter (where name = 'as_of') as date) as as_of
    from cfg_params
),

deals as (
    select * from int_deals
),

deal_contacts as (
    select distinct
        coalesce(deal_merges.surviving_deal_id, links.deal_id) as deal_id,
        coalesce(merges.surviving_contact_id, links.contact_id) as contact_id
    from stg_hubspot__contact_deals as links
    left join stg_hubspot__contact_merges as merges on merges.merged_contact_id = links.contact_id
    left join stg_hubspot__deal_merges as deal_merges on deal_merges.merged_deal_id = links.deal_id
),

contact_leads as (
    select contact_id, coalesce(lead_at, created_at) as became_lead_at
    from stg_hubspot__contacts
),

deal_windows as (
    select
        deals.deal_id,
        deals.is_won,
        deals.created_at as deal_created_at,
        case
            when deals.is_won and deals.closed_at is not null then deals.closed_at
            else (params.as_of + 1)::timestamptz
        end as conversion_at,
        min(contact_leads.became_lead_at) as lead_at,
        params.lookback_days
    from deals
    cross join params
    join deal_contacts on deal_contacts.deal_id = deals.deal_id
    left join contact_leads on contact_leads.contact_id = deal_contacts.contact_id
    group by all
),

windowed as (
    select
        deal_windows.deal_id,
        deal_contacts.contact_id,
        touches.touchpoint_id,
        touches.touchpoint_at,
        touches.channel,
        touches.source,
        touches.medium,
        touches.campaign,
        touches.term,
        touches.content,
        deal_windows.conversion_at,
        deal_windows.lead_at,
        deal_windows.deal_created_at,
        deal_windows.is_won
    from deal_windows
    join deal_contacts on deal_contacts.deal_id = deal_windows.deal_id
    join int_touchpoints as touches on touches.contact_id = deal_contacts.contact_id
    where touches.touchpoint_at <= deal_windows.conversion_at
      and touches.touchpoint_at >= coalesce(deal_windows.deal_created_at, deal_windows.conversion_at)
          - to_days(deal_windows.lookback_days)
),

indexed as (
    select
        *,
        row_number() over (partition by deal_id order by touchpoint_at, touchpoint_id) as touch_index,
        count(*) over (partition by deal_id) as n_touches
    from windowed
),

milestones as (
    select
        *,
        max(case when touchpoint_at <= lead_at then touch_index end) over (partition by deal_id)
            as lead_creation_index,
        max(case when touchpoint_at <= deal_created_at then touch_index end) over (partition by deal_id)
            as deal_creation_index,
        max(case when is_won and touchpoint_at <= conversion_at then touch_index end) over (partition by deal_id)
            as closed_won_index
    from indexed
),

final as (
    select
        deal_id,
        contact_id,
        touchpoint_id,
        touchpoint_at,
        channel,
        source,
        medium,
        campaign,
        term,
        content,
        touch_index,
        n_touches,
        touch_index = 1 as is_first_touch,
        coalesce(touch_index = lead_creation_index, false) as is_lead_creation,
        coalesce(touch_index = deal_creation_index, false) as is_deal_creation,
        coalesce(touch_index = closed_won_index, false) as is_closed_won,
        conversion_at,
        date_diff('second', touchpoint_at, conversion_at) / 86400.0 as days_before_conversion,
        is_won
    from milestones
)

select * from final
