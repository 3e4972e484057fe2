-- Each contact's lifecycle milestones, credited whole to its lead-creation touch: the last touch at/before the
-- contact became a lead (hs_lifecyclestage_lead_date, else createdate), else its first touch; 'unattributed' when
-- the contact has no touch at all. The ROI marts count leads / MQLs / SQLs / customers this way under every
-- attribution model (these are contact counts, not deal credits).
-- A stage reached without its own date (skipped stages) takes the date of the next stage reached.
with contacts as (
    select
        contact_id,
        created_at,
        coalesce(lead_at, mql_at, sql_at, opportunity_at, customer_at) as became_lead_at,
        coalesce(mql_at, sql_at, opportunity_at, customer_at) as became_mql_at,
        coalesce(sql_at, opportunity_at, customer_at) as became_sql_at,
        customer_at as became_customer_at
    from stg_hubspot__contacts
),

won_deal_dates as (
    -- contacts whose deal was won count as customers even when HubSpot's lifecycle date is missing
    select paths.contact_id, min(deals.won_at) as first_won_at
    from (select distinct deal_id, contact_id from int_deal_touchpoints) as paths
    join int_deals as deals on deals.deal_id = paths.deal_id
    where deals.is_won
    group by paths.contact_id
),

ranked_touches as (
    select
        touches.contact_id,
        touches.channel, touches.source, touches.medium, touches.campaign,
        row_number() over (
            partition by touches.contact_id
            order by
                (touches.touchpoint_at <= coalesce(contacts.became_lead_at, contacts.created_at)) desc,
                case when touches.touchpoint_at <= coalesce(contacts.became_lead_at, contacts.created_at)
                    then touches.touchpoint_at end desc,
                -- ties at the same moment: the same pick as int_deal_touchpoints' "last touch" (highest id)
                case when touches.touchpoint_at <= coalesce(contacts.became_lead_at, contacts.created_at)
                    then touches.touchpoint_id end desc,
                touches.touchpoint_at,
                touches.touchpoint_id
        ) as preference
    from int_touchpoints as touches
    join contacts on contacts.contact_id = touches.contact_id
),

final as (
    select
        contacts.contact_id,
        coalesce(ranked_touches.channel, 'unattributed') as channel,
        ranked_touches.source,
        ranked_touches.medium,
        ranked_touches.campaign,
        contacts.became_lead_at,
        contacts.became_mql_at,
        contacts.became_sql_at,
        coalesce(contacts.became_customer_at, won_deal_dates.first_won_at) as became_customer_at
    from contacts
    left join ranked_touches on ranked_touches.contact_id = contacts.contact_id and ranked_touches.preference = 1
    left join won_deal_dates on won_deal_dates.contact_id = contacts.contact_id
)

select * from final
