"""Seed the improv content: 14 games, the 10 principles with coaching tips, audience archetypes.

The rows are data, editable in Django admin afterwards; re-running only fills in missing slugs,
so an admin's edits survive. Reversing removes nothing an admin may have changed on purpose.
"""

from django.db import migrations

B, I, A = "beginner", "intermediate", "advanced"
LOW, MED, HIGH = "low", "medium", "high"

GAMES = [
    ("long-form", "Long Form", "An open scene with no gimmick: build a world, a relationship and a story.",
     ["Start from the audience suggestion.", "Establish who, what and where in the first few lines.",
      "Let the story grow from your partner's offers."], I, MED,
     ["relationship-first", "specificity", "game-of-the-scene"], 10, "a relationship or a location"),
    ("questions-only", "Questions Only", "Every line must be a question. A statement, a hesitation or a repeat loses.",
     ["Speak only in questions.", "No repeating a question already asked.", "Keep the scene moving forward."],
     B, HIGH, ["active-listening", "justification"], 4, "a location"),
    ("alphabet-scene", "Alphabet Scene", "Each line starts with the next letter of the alphabet.",
     ["The first line starts with the letter the audience picks.", "Each new line uses the next letter.",
      "Keep the story coherent while you hunt for words."], I, MED, ["active-listening", "commitment"], 5,
     "a letter and a location"),
    ("last-word-first-word", "Last Word, First Word", "Start each line with the last word your partner said.",
     ["Begin your line with your partner's final word.", "Let the forced word steer the story."],
     B, MED, ["active-listening", "yes-and"], 4, "a relationship"),
    ("expert-interview", "Expert Interview", "One of you is a world expert on an absurd subject; the other interviews.",
     ["The expert never admits ignorance.", "The interviewer builds on every claim.",
      "Heighten the expertise with specific details."], B, MED, ["commitment", "specificity", "justification"],
     5, "an absurd field of expertise"),
    ("emotional-rollercoaster", "Emotional Rollercoaster", "The scene jumps between emotions on cue.",
     ["Each time the emotion changes, commit to it fully.", "Justify the new feeling inside the story.",
      "Keep the relationship steady while feelings swing."], I, HIGH, ["emotional-honesty", "commitment"], 5,
     "a list of emotions"),
    ("genre-replay", "Genre Replay", "Play a short scene, then replay it in different genres.",
     ["Play a simple two-minute scene first.", "Replay the same story in each new genre.",
      "Keep the plot, change the style."], I, HIGH, ["commitment", "specificity"], 8, "an everyday activity"),
    ("one-word-story", "One Word Story", "Tell a story together, one word each.",
     ["Say exactly one word per turn.", "Build sentences that make sense.", "Aim for a beginning, middle and end."],
     B, LOW, ["group-mind", "active-listening"], 3, "a story title"),
    ("character-swap", "Character Swap", "Partway through, you swap characters and carry on.",
     ["Build two clear characters.", "On the swap, take over your partner's character exactly.",
      "Keep the story going without a break."], A, MED, ["active-listening", "commitment"], 6,
     "two occupations"),
    ("first-line-last-line", "First Line, Last Line", "The audience gives the first and the last line; get there.",
     ["Open with the given first line.", "Steer the story so the last line lands naturally.",
      "No rushing: earn the ending."], I, MED, ["game-of-the-scene", "justification"], 5,
     "a first line and a last line"),
    ("accusation", "Accusation", "One player accuses the other of something absurd; the accused must justify it.",
     ["The accuser names a specific, outrageous deed.", "The accused accepts it and explains why.",
      "Each justification raises the stakes."], B, HIGH, ["justification", "yes-and"], 4, "an absurd crime"),
    ("gibberish-translator", "Gibberish Translator", "One speaks only gibberish; the other translates for the audience.",
     ["The gibberish speaker commits with tone and gesture.", "The translator follows the emotion, not the words.",
      "Let the translations surprise you both."], I, HIGH, ["commitment", "object-work", "active-listening"], 5,
     "a product to sell or a cause to champion"),
    ("status-shift", "Status Shift", "Status between the characters slowly flips over the scene.",
     ["Start with a clear high-status and low-status character.", "Shift status a little with every exchange.",
      "By the end the status has fully reversed."], A, LOW, ["relationship-first", "emotional-honesty"], 6,
     "a workplace"),
    ("forward-reverse", "Forward / Reverse", "On cue, the scene rewinds line by line, then plays forward again.",
     ["Remember each line as you go.", "On 'reverse', replay lines backwards exactly.",
      "On 'forward', carry on with new material."], A, MED, ["active-listening", "group-mind"], 6,
     "a household chore"),
]

PRINCIPLES = [
    ("yes-and", "Yes, And", "Accept what your partner offers and add something new to it.",
     ["Partner: 'Our ship is sinking!' You: 'Yes, and I packed the inflatable piano.'"],
     ["Blocking an offer ('No, we're not on a ship').", "Saying 'yes' but adding nothing."],
     ["Treat every line as a gift and answer it with one new detail.",
      "If you feel the urge to say no, find the 'yes' inside it instead."]),
    ("active-listening", "Active Listening", "Hear the whole line before you decide what to say.",
     ["Echo a detail your partner just gave and build on it."],
     ["Planning your next joke while your partner talks.", "Ignoring names and facts already set."],
     ["Repeat a word from your partner's last line in your next one.",
      "Let your response be shaped by what was said, not by what you planned."]),
    ("commitment", "Commitment", "Play every choice fully, even when it feels silly.",
     ["A confident pirate stays a pirate, accent and all, to the end."],
     ["Breaking character to comment on the scene.", "Half-hearted choices made to stay safe."],
     ["Pick a choice and go all in for three lines before reconsidering.",
      "If something goes wrong, make it part of the character."]),
    ("object-work", "Object Work", "Make the invisible world real with clear, consistent details.",
     ["Describe the weight of the box you are lifting, then keep it that heavy."],
     ["Objects that appear and vanish.", "Talking about the world instead of being in it."],
     ["Name a physical object in your line and use it.", "Remember where things are in the space."]),
    ("relationship-first", "Relationship First", "Scenes are about people and how they feel about each other.",
     ["'Mum, I crashed your spaceship again' tells us who, where and how they feel."],
     ["Strangers meeting with no history.", "Plot before people."],
     ["Name your relationship in the first two lines.", "Give your character a feeling about your partner."]),
    ("justification", "Justification", "Make sense of the unexpected instead of ignoring it.",
     ["Partner forgot the treasure map: 'Of course, the map is tattooed on your back!'"],
     ["Treating a mistake as a mistake.", "Letting odd details slide without meaning."],
     ["When something strange happens, give it a reason inside the scene.",
      "Turn your partner's stumble into the most important thing in the story."]),
    ("specificity", "Specificity", "Specific details are funnier and easier to build on than vague ones.",
     ["Not 'a car' but 'my grandmother's 1974 orange Volvo'."],
     ["Generic names and places.", "Asking open questions instead of making statements."],
     ["Swap one vague word in your line for a specific name, number or place.",
      "Make statements that add information; avoid questions that push the work back."]),
    ("game-of-the-scene", "Game of the Scene", "Find the first unusual thing and play it again, bigger.",
     ["A waiter who apologises for everything apologises to the soup, then the chair, then the sky."],
     ["Dropping a pattern the audience loved.", "Adding new weirdness every line."],
     ["When a line gets a laugh, ask 'if this is true, what else is true?' and heighten it.",
      "Repeat the pattern three times, each time a step further."]),
    ("group-mind", "Group Mind", "Make your partner look good; the scene is a team effort.",
     ["Setting up your partner's punchline instead of taking your own."],
     ["Steamrolling the scene.", "Competing for the biggest laugh."],
     ["Ask yourself what your partner needs next, and give it to them.",
      "Share focus: after a big line, let your partner react."]),
    ("emotional-honesty", "Emotional Honesty", "Real reactions make the silliest scene land.",
     ["Genuinely grieving the loss of a sandwich makes the absurd believable."],
     ["Playing everything for jokes.", "Flat reactions to big events."],
     ["React with a real emotion before you add information.",
      "Let the scene change how your character feels."]),
]

ARCHETYPES = [
    ("enthusiast", "The Enthusiast", "Loves everything and cheers loudly.", "big, exciting places and events",
     "bold choices and big energy"),
    ("skeptic", "The Skeptic", "Arms crossed, waiting to be won over.", "mundane, hard-to-play situations",
     "grounded, believable reactions"),
    ("first-timer", "The First-Timer", "Never seen improv before and a little nervous.", "everyday places",
     "clear stories that are easy to follow"),
    ("regular", "The Regular", "Comes every week and knows all the games.", "classic improv suggestions with a twist",
     "callbacks and heightened patterns"),
    ("social-butterfly", "The Social Butterfly", "Here with a big group of friends.", "parties and celebrations",
     "relationships and big emotions"),
    ("intellectual", "The Intellectual", "Enjoys wordplay and clever premises.", "historical or scientific topics",
     "specific, clever details"),
    ("kid-at-heart", "The Kid at Heart", "Delights in the silly and fantastical.", "animals, magic and adventures",
     "physical comedy and imaginative worlds"),
    ("professional", "The Professional", "Came straight from the office.", "workplace situations",
     "status games and recognisable situations"),
    ("date-night", "The Date Night Couple", "Out for a fun evening together.", "romantic or awkward situations",
     "tender moments and relationship scenes"),
    ("heckler", "The Friendly Heckler", "Shouts unexpected suggestions, but means well.",
     "absurd, surprising suggestions", "players who justify anything"),
]


def seed(apps, schema_editor):
    Game = apps.get_model("improv", "Game")
    Principle = apps.get_model("improv", "Principle")
    Archetype = apps.get_model("improv", "AudienceArchetype")
    for position, (slug, name, desc, rules, difficulty, energy, skills, minutes, prompt) in enumerate(GAMES):
        Game.objects.get_or_create(slug=slug, defaults=dict(
            name=name, description=desc, rules=rules, difficulty=difficulty, energy=energy, skills=skills,
            duration_minutes=minutes, suggestion_prompt=prompt, position=position,
        ))
    for position, (slug, name, summary, examples, mistakes, tips) in enumerate(PRINCIPLES):
        Principle.objects.get_or_create(slug=slug, defaults=dict(
            name=name, summary=summary, examples=examples, common_mistakes=mistakes, coaching_tips=tips,
            position=position,
        ))
    for slug, name, desc, style, reacts in ARCHETYPES:
        Archetype.objects.get_or_create(slug=slug, defaults=dict(
            name=name, description=desc, suggestion_style=style, reacts_to=reacts,
        ))


class Migration(migrations.Migration):
    dependencies = [("improv", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
