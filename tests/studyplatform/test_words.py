from studyplatform.words import counted


def test_counts_agree_with_their_nouns():
    assert counted(1, "participant") == "1 participant"
    assert counted(0, "participant") == "0 participants"
    assert counted(2, "attention check") == "2 attention checks"
    assert counted(1, "child", "children") == "1 child" and counted(3, "child", "children") == (
        "3 children"
    )
